package fsys

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The update verb takes either a one-line JSON object of OCI LinuxResources
// (what `runc update -r -` reads) or key=value shorthands:
//
//	update memory=256M memory-swap=512M cpu-shares=512 cpu-quota=50000 pids=100
//	update {"memory":{"limit":268435456},"cpu":{"shares":512}}

// updateKeys are the shorthands and how each sets the resources. The
// runc update flag names cpu-share and pids-limit are accepted too.
var updateKeys = map[string]func(r *specs.LinuxResources, v string) error{
	"memory":             func(r *specs.LinuxResources, v string) error { return setBytes(&memoryOf(r).Limit, v) },
	"memory-swap":        func(r *specs.LinuxResources, v string) error { return setBytes(&memoryOf(r).Swap, v) },
	"memory-reservation": func(r *specs.LinuxResources, v string) error { return setBytes(&memoryOf(r).Reservation, v) },
	"cpu-shares":         func(r *specs.LinuxResources, v string) error { return setUint(&cpuOf(r).Shares, v) },
	"cpu-quota":          func(r *specs.LinuxResources, v string) error { return setInt(&cpuOf(r).Quota, v) },
	"cpu-period":         func(r *specs.LinuxResources, v string) error { return setUint(&cpuOf(r).Period, v) },
	"cpuset-cpus":        func(r *specs.LinuxResources, v string) error { return setList(&cpuOf(r).Cpus, v) },
	"cpuset-mems":        func(r *specs.LinuxResources, v string) error { return setList(&cpuOf(r).Mems, v) },
	"pids": func(r *specs.LinuxResources, v string) error {
		var n *int64
		if err := setInt(&n, v); err != nil {
			return err
		}
		r.Pids = &specs.LinuxPids{Limit: *n}
		return nil
	},
	"blkio-weight": func(r *specs.LinuxResources, v string) error {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return errors.New("want a number from 10 to 1000")
		}
		w := uint16(n)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		return nil
	},
}

var updateAliases = map[string]string{"cpu-share": "cpu-shares", "pids-limit": "pids"}

func updateKeyList() string {
	keys := make([]string, 0, len(updateKeys))
	for k := range updateKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func memoryOf(r *specs.LinuxResources) *specs.LinuxMemory {
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func cpuOf(r *specs.LinuxResources) *specs.LinuxCPU {
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

// parseUpdate parses the arguments of update: key=value words, or obj, the
// JSON object taken as written from the line.
func parseUpdate(args []string, obj string) (runtime.UpdateRequest, error) {
	var req runtime.UpdateRequest
	switch {
	case obj != "" && len(args) > 0:
		return req, fmt.Errorf("give either a JSON object or key=value pairs, not both")
	case obj != "":
		if err := runtime.CheckJSONSurrogates("update", []byte(obj)); err != nil {
			return req, err
		}
		dec := json.NewDecoder(strings.NewReader(obj))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req.Resources); err != nil {
			return req, fmt.Errorf("bad JSON of OCI LinuxResources: %v", err)
		}
		if rest := strings.TrimSpace(obj[dec.InputOffset():]); rest != "" {
			return req, fmt.Errorf("unexpected text after the JSON object: %q", rest)
		}
	case len(args) == 0:
		return req, fmt.Errorf("usage: update KEY=VALUE... (keys: %s) or update {JSON of OCI LinuxResources}", updateKeyList())
	default:
		seen := map[string]bool{}
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				return req, fmt.Errorf("%q: want KEY=VALUE (keys: %s)", a, updateKeyList())
			}
			if alias, ok := updateAliases[k]; ok {
				k = alias
			}
			set, ok := updateKeys[k]
			if !ok {
				return req, fmt.Errorf("unknown key %q (keys: %s)", k, updateKeyList())
			}
			if seen[k] {
				return req, fmt.Errorf("%s given twice", k)
			}
			seen[k] = true
			if err := set(&req.Resources, v); err != nil {
				return req, fmt.Errorf("%s=%q: %v", k, v, err)
			}
		}
	}
	return req, req.Check()
}

// noLimit are the words that mean "no limit" (-1, as runc takes it).
func noLimit(v string) bool {
	switch strings.ToLower(v) {
	case "-1", "max", "unlimited":
		return true
	}
	return false
}

var sizePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(?:([kmgtp])(?:i?b)?|b)?$`)

// ParseBytes parses a size: a number with an optional binary unit, as
// docker and runc take them: b; k, kb, kib; m...; g...; t...; p... (1024
// based, any case). A fraction is allowed with a unit ("1.5g") and
// rounded down to whole bytes.
func ParseBytes(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return 0, fmt.Errorf("want a size like 64M, 1.5G or 4096")
	}
	num, unit := m[1], m[2]
	if strings.Contains(num, ".") && unit == "" {
		return 0, fmt.Errorf("a fraction of a byte: give a unit (1.5k) or whole bytes")
	}
	mult := int64(1) << (10 * strings.Index("_kmgtp", unit)) // "" is at 0: bytes
	f, ok := new(big.Float).SetString(num)
	if !ok {
		return 0, fmt.Errorf("want a size like 64M, 1.5G or 4096")
	}
	f.Mul(f, new(big.Float).SetInt64(mult))
	n, _ := f.Int(nil) // rounds toward zero
	if !n.IsInt64() {
		return 0, fmt.Errorf("too large")
	}
	return n.Int64(), nil
}

func setBytes(dst **int64, v string) error {
	n := int64(-1)
	if !noLimit(v) {
		var err error
		if n, err = ParseBytes(v); err != nil {
			return err
		}
	}
	*dst = &n
	return nil
}

func setInt(dst **int64, v string) error {
	n := int64(-1)
	if !noLimit(v) {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			return errors.New("want a whole number, or max")
		}
	}
	*dst = &n
	return nil
}

func setUint(dst **uint64, v string) error {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return errors.New("want a whole number")
	}
	*dst = &n
	return nil
}

func setList(dst *string, v string) error {
	if v == "" {
		return errors.New("empty list")
	}
	if _, err := runtime.ParseCPUList(v); err != nil {
		return err
	}
	*dst = v
	return nil
}
