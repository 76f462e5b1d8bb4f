package runtime

import "testing"

func TestCheckJSONSurrogates(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"a":"plain"}`, true},
		{`{"a":"\u00e9\n\\u"}`, true},
		{`{"a":"\ud83d\ude00"}`, true},   // a valid pair
		{`{"a":"\uD83D\uDE00x"}`, true},  // upper case
		{`{"a":"\\udcff"}`, true},        // an escaped backslash, then text
		{`{"a":"\udcff"}`, false},        // a lone low half
		{`{"a":"\ud83d"}`, false},        // a lone high half
		{`{"a":"\ud83dx\ude00"}`, false}, // not adjacent
		{`{"a":"\ud83d\u0041"}`, false},  // high then not low
		{`{"a":"\ud83d\ud83d\ude00"}`, false},
		{`{"a":"\\\udcff"}`, false},
	} {
		err := CheckJSONSurrogates("t", []byte(c.in))
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok %v", c.in, err, c.ok)
		}
		if err != nil && KindOf(err) != KindInvalid {
			t.Errorf("%s: kind %v", c.in, KindOf(err))
		}
	}
}
