package runtime

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestReadBack(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	i64 := func(v int64) *int64 { return &v }
	w16 := func(v uint16) *uint16 { return &v }
	asked := specs.LinuxResources{
		CPU:     &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0"},
		BlockIO: &specs.LinuxBlockIO{Weight: w16(500)},
	}
	write := func(dir string, files map[string]string) {
		for n, v := range files {
			os.WriteFile(filepath.Join(dir, n), []byte(v+"\n"), 0o644)
		}
	}
	v1 := t.TempDir()
	write(v1, map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpuset.cpus": "0-1", "blkio.weight": "500"})
	got := readBack(cgroupDirs{cpu: v1, cpuset: v1, blkio: v1}, nil, asked)
	if *got.CPU.Shares != 512 || *got.CPU.Quota != -1 || *got.CPU.Period != 100000 || got.CPU.Cpus != "0-1" || *got.BlockIO.Weight != 500 {
		t.Errorf("v1: %+v %+v", got.CPU, got.BlockIO)
	}
	v2 := t.TempDir()
	// 512 shares is weight 20 (runc's conversion); 500 blkio is io 4950.
	write(v2, map[string]string{"cpu.weight": "20", "cpu.max": "max 100000", "cpuset.cpus": "0", "io.weight": "default 4950"})
	got = readBack(cgroupDirs{cpu: v2, cpuset: v2, blkio: v2, v2: true}, nil, asked)
	if *got.CPU.Shares != 512 || *got.CPU.Quota != -1 || *got.CPU.Period != 100000 || got.CPU.Cpus != "0" || *got.BlockIO.Weight != 500 {
		t.Errorf("v2: %+v %+v", got.CPU, got.BlockIO)
	}
	// The kernel kept the weight of the shares before.
	before := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024)}}
	write(v2, map[string]string{"cpu.weight": "39"})
	if got = readBack(cgroupDirs{cpu: v2, cpuset: v2, blkio: v2, v2: true}, before, asked); *got.CPU.Shares != 1024 {
		t.Errorf("v2 unchanged weight: shares %d, want 1024", *got.CPU.Shares)
	}
}
