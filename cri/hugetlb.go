package cri

import (
	"os"
	"slices"
	"strings"
	"sync"
)

// hugetlbCgroup tells whether runc can set hugepage limits on this host:
// the kubelet asks for one per page size the kernel has (limit 0 unless
// the pod requests hugepages), and runc fails the create where the hugetlb
// controller is missing (this kind of host has no v1 hugetlb hierarchy).
// Like containerd's tolerate_missing_hugetlb_controller (on by default),
// the limits are then left out.
var hugetlbCgroup = sync.OnceValue(func() bool {
	// cgroup v2 mounted at /sys/fs/cgroup: its controllers are listed there.
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return slices.Contains(strings.Fields(string(b)), "hugetlb")
	}
	_, err := os.Stat("/sys/fs/cgroup/hugetlb")
	return err == nil
})
