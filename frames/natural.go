package frames

import (
	"cmp"
	"slices"
)

// naturalSort orders names as people number frames: runs of digits compare
// by their value (2.png < 10.png, frame_9 < frame_010), everything else
// byte by byte; names equal in that order fall back to plain comparison so
// that the order is total.
func naturalSort(names []string) {
	slices.SortFunc(names, naturalCompare)
}

func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			ei, ej := digitsEnd(a, i), digitsEnd(b, j)
			na, nb := trimZeros(a[i:ei]), trimZeros(b[j:ej])
			if len(na) != len(nb) {
				return cmp.Compare(len(na), len(nb))
			}
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			i, j = ei, ej
			continue
		}
		if a[i] != b[j] {
			return cmp.Compare(int(a[i]), int(b[j]))
		}
		i++
		j++
	}
	if c := cmp.Compare(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
