package runtime

// CheckJSONSurrogates refuses (EINVAL) a JSON text holding a \u escape of a
// UTF-16 surrogate (\ud800-\udfff) that is not half of a valid pair: Go's
// decoder changes such an escape to U+FFFD silently, and ctrfs never
// changes a byte it is given. It runs on the raw text, before decoding.
// Backslashes appear only inside strings in valid JSON, so no string
// tracking is needed; invalid JSON is left for the decoder to refuse.
func CheckJSONSurrogates(what string, raw []byte) error {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 >= len(raw) {
			return nil
		}
		if raw[i+1] != 'u' {
			i++ // skip the escaped byte (\\ or \")
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			return nil // bad escape: the decoder says so
		}
		switch {
		case r >= 0xd800 && r < 0xdc00:
			lo, ok := rune(0), false
			if i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				lo, ok = hex4(raw, i+8)
			}
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return Errorf(KindInvalid, "%s: JSON escape %s is half of a UTF-16 surrogate pair, with no low half after it: it names no character, and would be changed to U+FFFD", what, raw[i:i+6])
			}
			i += 11
		case r >= 0xdc00 && r <= 0xdfff:
			return Errorf(KindInvalid, "%s: JSON escape %s is the low half of a UTF-16 surrogate pair, with no high half before it: it names no character, and would be changed to U+FFFD", what, raw[i:i+6])
		default:
			i += 5
		}
	}
	return nil
}

// hex4 reads 4 hex digits at raw[at:].
func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
