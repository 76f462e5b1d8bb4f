package fsys

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ctrfs/ctrfs/runtime"
)

// parseLogMaxSize parses the value of --log-max-size (create, run, exec):
// bytes, or a number with K, M or G (powers of 1024); 0 means no bound.
func parseLogMaxSize(s string) (*int64, error) {
	num, mult := s, int64(1)
	if i := len(s) - 1; i > 0 {
		switch strings.ToUpper(s[i:]) {
		case "K":
			num, mult = s[:i], 1<<10
		case "M":
			num, mult = s[:i], 1<<20
		case "G":
			num, mult = s[:i], 1<<30
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return nil, fmt.Errorf("--log-max-size %q: want bytes, or a number with K, M or G; 0 for no bound", s)
	}
	n *= mult
	if err := runtime.CheckLogMaxSize(n); err != nil {
		return nil, err
	}
	return &n, nil
}
