package runtime

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"0": {0}, "0-2": {0, 1, 2}, "0-1,3,5-6": {0, 1, 3, 5, 6}, "7-7": {7}} {
		got, err := ParseCPUList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseCPUList(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", ",", "a", "1-", "-1", "2-1", "0,,1", "1 ", "0x1", "8192", "1-9999"} {
		if got, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", bad, got)
		}
	}
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func jsonOf(v any) string  { b, _ := json.Marshal(v); return string(b) }

func TestMergeResources(t *testing.T) {
	base := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: i64(1 << 30), Reservation: i64(1 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Cpus: "0-1"},
	}
	baseJSON := jsonOf(base)
	got := mergeResources(base, specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20)},
		CPU:     &specs.LinuxCPU{Quota: i64(50000)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500)},
		Pids:    &specs.LinuxPids{Limit: 50},
	})
	want := `{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":67108864,"reservation":1048576},` +
		`"cpu":{"shares":1024,"quota":50000,"cpus":"0-1"},"pids":{"limit":50},"blockIO":{"weight":500}}`
	if jsonOf(got) != want {
		t.Errorf("merged = %s\nwant     %s", jsonOf(got), want)
	}
	if jsonOf(base) != baseJSON {
		t.Errorf("merge modified its base: %s", jsonOf(base))
	}
	if got := mergeResources(nil, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: -1}}); jsonOf(got) != `{"pids":{"limit":-1}}` {
		t.Errorf("merge into nothing = %s", jsonOf(got))
	}
}

func TestUpdateNormalized(t *testing.T) {
	req := UpdateRequest{Resources: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}}
	if got := jsonOf(req.normalized()); got != `{"memory":{"limit":-1,"swap":-1}}` {
		t.Errorf("memory=-1 normalized = %s, want swap lifted too (as runc does)", got)
	}
	if got := jsonOf(req.Resources); got != `{"memory":{"limit":-1}}` {
		t.Errorf("normalized modified the request: %s", got)
	}
	req = UpdateRequest{Resources: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20)}}}
	if got := jsonOf(req.normalized()); got != `{"memory":{"limit":1048576}}` {
		t.Errorf("normalized = %s", got)
	}
}

func TestResourcesOf(t *testing.T) {
	if r := resourcesOf([]byte(`{"linux":{"resources":{"pids":{"limit":5}}}}`)); r == nil || r.Pids.Limit != 5 {
		t.Errorf("resourcesOf = %+v", r)
	}
	for _, raw := range []string{`{}`, `{"linux":{}}`, `not json`} {
		if r := resourcesOf([]byte(raw)); r != nil {
			t.Errorf("resourcesOf(%s) = %+v", raw, r)
		}
	}
}
