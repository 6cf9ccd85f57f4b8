package httpapi

import (
	"encoding/json"
	"math"
	"testing"
)

func TestJSONFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1.5, `1.5`},
		{-0.125, `-0.125`},
		{1e300, `1e+300`},
		{math.NaN(), `"NaN"`},
		{math.Inf(1), `"+Inf"`},
		{math.Inf(-1), `"-Inf"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(struct{ V jsonFloat }{jsonFloat(tt.in)})
		if err != nil {
			t.Fatalf("marshal %v: %v", tt.in, err)
		}
		if want := `{"V":` + tt.want + `}`; string(got) != want {
			t.Errorf("marshal %v: got %s, want %s", tt.in, got, want)
		}
		if csv := string(appendFloat(nil, tt.in, false)); csv != trimQuotes(tt.want) {
			t.Errorf("CSV %v: got %s, want %s", tt.in, csv, trimQuotes(tt.want))
		}
	}
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
