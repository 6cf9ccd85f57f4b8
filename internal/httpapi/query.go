package httpapi

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/telemetry"
	"github.com/vigil-iot/vigil/internal/timeseries"
)

// timeLayout formats times in query results: RFC 3339, UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// selectorOf reads measurement, field, device and tag.K=V parameters.
func selectorOf(q url.Values) timeseries.Selector {
	sel := timeseries.Selector{Measurement: q.Get("measurement"), Field: q.Get("field")}
	if d, ok := q["device"]; ok && len(d) > 0 {
		sel.Tags = append(sel.Tags, timeseries.Matcher{Key: telemetry.DeviceTag, Op: timeseries.MatchEqual, Value: d[0]})
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		if strings.HasPrefix(k, "tag.") && len(k) > len("tag.") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range q[k] {
			sel.Tags = append(sel.Tags, timeseries.Matcher{Key: strings.TrimPrefix(k, "tag."), Op: timeseries.MatchEqual, Value: v})
		}
	}
	return sel
}

// parseTime parses an RFC 3339 time, Unix seconds (integer or decimal),
// "now", or a negative duration relative to now ("-15m").
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if strings.HasPrefix(s, "-") {
		if d, err := time.ParseDuration(s); err == nil {
			return now.Add(d), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest("time %q: want RFC 3339, Unix seconds, \"now\" or a negative duration such as -1h", s)
	}
	return t, nil
}

// rangeOf reads start and end; end defaults to now, start to end-lookback.
// end is exclusive.
func (s *Server) rangeOf(q url.Values, lookback time.Duration) (timeseries.Range, error) {
	now := s.now()
	end := now
	if v := q.Get("end"); v != "" {
		t, err := parseTime(v, now)
		if err != nil {
			return timeseries.Range{}, err
		}
		end = t
	} else {
		// Include a sample written at exactly now.
		end = end.Add(time.Millisecond)
	}
	start := end.Add(-lookback)
	if v := q.Get("start"); v != "" {
		t, err := parseTime(v, now)
		if err != nil {
			return timeseries.Range{}, err
		}
		start = t
	}
	if !start.Before(end) {
		return timeseries.Range{}, badRequest("range: start %s is not before end %s", start.UTC().Format(timeLayout), end.UTC().Format(timeLayout))
	}
	return timeseries.Range{Start: start.UnixMilli(), End: end.UnixMilli()}, nil
}

func wantsCSV(r *http.Request) bool {
	return r.URL.Query().Get("format") == "csv" || strings.Contains(r.Header.Get("Accept"), "text/csv")
}

// listSeries is GET /api/v1/series: the series with data in the range
// (default: the last LastLookback).
func (s *Server) listSeries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rg, err := s.rangeOf(q, s.d.LastLookback)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	series, err := s.d.Series.ListSeries(r.Context(), selectorOf(q), rg)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	if wantsCSV(r) {
		cw := startCSV(w, "key", "measurement", "tags", "field")
		for _, sr := range series {
			_ = cw.Write([]string{sr.Key(), sr.Measurement, tagString(sr.Tags), sr.Field})
		}
		cw.Flush()
		return
	}
	out := make([]seriesJSON, len(series))
	for i, sr := range series {
		out[i] = seriesOf(sr)
	}
	writeJSON(w, http.StatusOK, struct {
		Series []seriesJSON `json:"series"`
	}{out})
}

// query is GET /api/v1/query: raw samples, or buckets when step is given.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rg, err := s.rangeOf(q, time.Hour)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	sel := selectorOf(q)
	if q.Get("step") == "" {
		if q.Get("agg") != "" {
			writeError(w, r, styleV2, s.log, badRequest("agg %q given without step", q.Get("agg")))
			return
		}
		res, err := s.d.Series.QueryRange(r.Context(), sel, rg)
		if err != nil {
			writeError(w, r, styleV2, s.log, err)
			return
		}
		writeSamples(w, r, res)
		return
	}
	step, err := time.ParseDuration(q.Get("step"))
	if err != nil || step < time.Millisecond {
		writeError(w, r, styleV2, s.log, badRequest("step %q: want a duration of at least 1ms, such as 1m", q.Get("step")))
		return
	}
	aggs := []timeseries.Aggregate{timeseries.AggAvg}
	if v := q.Get("agg"); v != "" {
		aggs = aggs[:0]
		for name := range strings.SplitSeq(v, ",") {
			a, err := timeseries.ParseAggregate(strings.TrimSpace(name))
			if err != nil {
				writeError(w, r, styleV2, s.log, err)
				return
			}
			aggs = append(aggs, a)
		}
	}
	res, err := s.d.Series.Downsample(r.Context(), sel, rg, step, aggs)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	writeBuckets(w, r, res, step, aggs)
}

// lastOf returns the last sample of every series matching the request.
func (s *Server) lastOf(r *http.Request) ([]timeseries.SeriesSamples, error) {
	q := r.URL.Query()
	rg, err := s.rangeOf(q, s.d.LastLookback)
	if err != nil {
		return nil, err
	}
	res, err := s.d.Series.QueryRange(r.Context(), selectorOf(q), rg)
	if err != nil {
		return nil, err
	}
	out := res[:0]
	for _, ss := range res {
		if n := len(ss.Samples); n > 0 {
			ss.Samples = ss.Samples[n-1:]
			out = append(out, ss)
		}
	}
	return out, nil
}

// last is GET /api/v1/last: the last sample of each series in the range.
func (s *Server) last(w http.ResponseWriter, r *http.Request) {
	res, err := s.lastOf(r)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	if wantsCSV(r) {
		writeSamples(w, r, res)
		return
	}
	type lastJSON struct {
		seriesJSON
		Time  string    `json:"time"`
		Value jsonFloat `json:"value"`
	}
	out := make([]lastJSON, len(res))
	for i, ss := range res {
		out[i] = lastJSON{seriesOf(ss.Series), fmtTime(ss.Samples[0].Time), jsonFloat(ss.Samples[0].Value)}
	}
	writeJSON(w, http.StatusOK, struct {
		Series []lastJSON `json:"series"`
	}{out})
}

// devices is GET /api/v1/devices: each device with series in the range,
// its series count and the time of its newest sample.
func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	res, err := s.lastOf(r)
	if err != nil {
		writeError(w, r, styleV2, s.log, err)
		return
	}
	type deviceJSON struct {
		Device   string `json:"device"`
		Series   int    `json:"series"`
		LastSeen string `json:"last_seen"`
		last     int64
	}
	byName := map[string]*deviceJSON{}
	var out []*deviceJSON
	for _, ss := range res {
		d := ss.Series.Device()
		if d == "" {
			continue
		}
		dj := byName[d]
		if dj == nil {
			dj = &deviceJSON{Device: d, last: math.MinInt64}
			byName[d] = dj
			out = append(out, dj)
		}
		dj.Series++
		dj.last = max(dj.last, ss.Samples[0].Time)
	}
	slices.SortFunc(out, func(a, b *deviceJSON) int { return strings.Compare(a.Device, b.Device) })
	for _, d := range out {
		d.LastSeen = fmtTime(d.last)
	}
	if wantsCSV(r) {
		cw := startCSV(w, "device", "series", "last_seen")
		for _, d := range out {
			_ = cw.Write([]string{d.Device, strconv.Itoa(d.Series), d.LastSeen})
		}
		cw.Flush()
		return
	}
	if out == nil {
		out = []*deviceJSON{}
	}
	writeJSON(w, http.StatusOK, struct {
		Devices []*deviceJSON `json:"devices"`
	}{out})
}

// seriesJSON is a series in JSON results.
type seriesJSON struct {
	Key         string            `json:"key"`
	Measurement string            `json:"measurement"`
	Tags        map[string]string `json:"tags"`
	Field       string            `json:"field"`
}

func seriesOf(sr telemetry.Series) seriesJSON {
	tags := make(map[string]string, len(sr.Tags))
	for _, t := range sr.Tags {
		tags[t.Key] = t.Value
	}
	return seriesJSON{Key: sr.Key(), Measurement: sr.Measurement, Tags: tags, Field: sr.Field}
}

// jsonFloat encodes NaN and ±Inf, which JSON numbers cannot hold, as the
// strings "NaN", "+Inf" and "-Inf".
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) { return appendFloat(nil, float64(f), true), nil }

func appendFloat(b []byte, f float64, quoteSpecial bool) []byte {
	switch {
	case math.IsNaN(f):
		return appendSpecial(b, "NaN", quoteSpecial)
	case math.IsInf(f, 1):
		return appendSpecial(b, "+Inf", quoteSpecial)
	case math.IsInf(f, -1):
		return appendSpecial(b, "-Inf", quoteSpecial)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func appendSpecial(b []byte, s string, quote bool) []byte {
	if quote {
		return append(append(append(b, '"'), s...), '"')
	}
	return append(b, s...)
}

func fmtTime(ms int64) string { return telemetry.FromMillis(ms).Format(timeLayout) }

func tagString(ts telemetry.Tags) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Key)
		b.WriteByte('=')
		b.WriteString(t.Value)
	}
	return b.String()
}

func startCSV(w http.ResponseWriter, header ...string) *csv.Writer {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	return cw
}

// writeSamples writes raw samples as JSON
// {"series":[{...series, "samples":[{"time":..., "value":...}]}]} or as CSV
// rows measurement,tags,field,time,value.
func writeSamples(w http.ResponseWriter, r *http.Request, res []timeseries.SeriesSamples) {
	if wantsCSV(r) {
		cw := startCSV(w, "measurement", "tags", "field", "time", "value")
		var nb []byte
		for _, ss := range res {
			tags := tagString(ss.Series.Tags)
			for _, sm := range ss.Samples {
				nb = appendFloat(nb[:0], sm.Value, false)
				_ = cw.Write([]string{ss.Series.Measurement, tags, ss.Series.Field, fmtTime(sm.Time), string(nb)})
			}
		}
		cw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	b := make([]byte, 0, 256)
	b = append(b, `{"series":[`...)
	for i, ss := range res {
		if i > 0 {
			b = append(b, ',')
		}
		hdr, _ := json.Marshal(seriesOf(ss.Series))
		b = append(b, hdr[:len(hdr)-1]...)
		b = append(b, `,"samples":[`...)
		for j, sm := range ss.Samples {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"time":"`...)
			b = telemetry.FromMillis(sm.Time).AppendFormat(b, timeLayout)
			b = append(b, `","value":`...)
			b = appendFloat(b, sm.Value, true)
			b = append(b, '}')
			if len(b) > 16<<10 {
				_, _ = bw.Write(b)
				b = b[:0]
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}\n"...)
	_, _ = bw.Write(b)
	_ = bw.Flush()
}

// writeBuckets writes downsampled series as JSON
// {"step":"1m0s","aggregates":[...],"series":[{...series,"buckets":[{"time":...,"avg":...}]}]}
// or as CSV rows measurement,tags,field,time,<agg>...
func writeBuckets(w http.ResponseWriter, r *http.Request, res []timeseries.SeriesBuckets, step time.Duration, aggs []timeseries.Aggregate) {
	if wantsCSV(r) {
		hdr := []string{"measurement", "tags", "field", "time"}
		for _, a := range aggs {
			hdr = append(hdr, string(a))
		}
		cw := startCSV(w, hdr...)
		row := make([]string, len(hdr))
		for _, sb := range res {
			tags := tagString(sb.Series.Tags)
			for _, bk := range sb.Buckets {
				row = append(row[:0], sb.Series.Measurement, tags, sb.Series.Field, fmtTime(bk.Start))
				for _, v := range bk.Values {
					row = append(row, string(appendFloat(nil, v, false)))
				}
				_ = cw.Write(row)
			}
		}
		cw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	b := make([]byte, 0, 256)
	b = append(b, `{"step":`...)
	b = strconv.AppendQuote(b, step.String())
	b = append(b, `,"aggregates":[`...)
	for i, a := range aggs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, string(a))
	}
	b = append(b, `],"series":[`...)
	for i, sb := range res {
		if i > 0 {
			b = append(b, ',')
		}
		hdr, _ := json.Marshal(seriesOf(sb.Series))
		b = append(b, hdr[:len(hdr)-1]...)
		b = append(b, `,"buckets":[`...)
		for j, bk := range sb.Buckets {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"time":"`...)
			b = telemetry.FromMillis(bk.Start).AppendFormat(b, timeLayout)
			b = append(b, '"')
			for k, v := range bk.Values {
				if k < len(aggs) {
					b = append(b, ',')
					b = strconv.AppendQuote(b, string(aggs[k]))
					b = append(b, ':')
					b = appendFloat(b, v, true)
				}
			}
			b = append(b, '}')
			if len(b) > 16<<10 {
				_, _ = bw.Write(b)
				b = b[:0]
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}\n"...)
	_, _ = bw.Write(b)
	_ = bw.Flush()
}
