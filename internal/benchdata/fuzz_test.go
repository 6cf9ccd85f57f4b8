package benchdata

import (
	"strings"
	"testing"
)

func checkTable(t *testing.T, tb *table) {
	t.Helper()
	if len(tb.cells) != len(tb.times)*len(tb.columns) || len(tb.anomalous) != len(tb.times) {
		t.Fatalf("got %d cells, %d flags for %d rows of %d columns", len(tb.cells), len(tb.anomalous), len(tb.times), len(tb.columns))
	}
	for i := 1; i < len(tb.times); i++ {
		if tb.times[i].Before(tb.times[i-1]) {
			t.Fatalf("row %d at %v before row %d at %v", i, tb.times[i], i-1, tb.times[i-1])
		}
	}
	for _, c := range tb.cells {
		if strings.ContainsAny(c, ",\n\r\"") {
			t.Fatalf("cell %q would break the CSV", c)
		}
	}
}

func FuzzParseNAB(f *testing.F) {
	f.Add("timestamp,value\n2014-04-10 00:00:00,1\n2014-04-09 00:00:00,2\n")
	f.Add("timestamp,value,label,notes\r\n2014-04-10 00:00:00.5,1e3,0,\"a, b\"\r\n")
	f.Add("value,timestamp\n1,2014-04-10T00:00:00Z\n")
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := parseNAB("x.csv", strings.NewReader(in))
		if err != nil {
			return
		}
		checkTable(t, tb)
	})
}

func FuzzParseSKAB(f *testing.F) {
	f.Add("datetime;a;b c;anomaly;changepoint\r\n2020-03-09 10:14:33;1;2;1.0;0\r\n2020-03-09 10:14:34;1;2;0;0\r\n")
	f.Add("datetime;a;is_anomaly;is_pa\n2020-03-09 10:14:33;1;1;0\n")
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := parseSKAB("x.csv", strings.NewReader(in))
		if err != nil {
			return
		}
		checkTable(t, tb)
		if len(tb.columns) == 0 {
			t.Fatal("no columns")
		}
		skabWindows(tb)
	})
}
