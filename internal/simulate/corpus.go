package simulate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LabelsFile is the name of the labels file in a corpus directory.
const LabelsFile = "labels.json"

// LabelsVersion is the version of the labels format written by WriteCorpus.
const LabelsVersion = 1

// ErrBadLabels is returned (wrapped) when a labels file is malformed.
var ErrBadLabels = errors.New("malformed labels")

// Labels describes a corpus: its CSV files and their anomaly windows. The
// format is described in FORMAT.md.
type Labels struct {
	Version int          `json:"version"`
	Seed    uint64       `json:"seed"`
	Files   []FileLabels `json:"files"`
}

// FileLabels describes one CSV file of a corpus.
type FileLabels struct {
	// File is the file name, relative to the corpus directory.
	File string `json:"file"`
	// IntervalMs is the nominal sampling interval in milliseconds.
	IntervalMs int64 `json:"interval_ms"`
	// Rows is the number of data rows (the header excluded).
	Rows int `json:"rows"`
	// Columns are the value columns, after the timestamp column.
	Columns []string `json:"columns"`
	// Windows are the labelled anomalies; none for a clean file.
	Windows []Window `json:"windows"`
}

// Window is one labelled anomaly: readings with Start <= timestamp < End are
// anomalous. A dropout window holds no readings at all.
type Window struct {
	Kind    Kind      `json:"kind"`
	Columns []string  `json:"columns"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

// ReadLabels decodes and validates a labels file. Errors wrap ErrBadLabels
// and name the offending file entry.
func ReadLabels(r io.Reader) (Labels, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var l Labels
	if err := dec.Decode(&l); err != nil {
		return Labels{}, fmt.Errorf("read labels: %w: %w", ErrBadLabels, err)
	}
	if dec.More() {
		return Labels{}, fmt.Errorf("read labels: %w: trailing data after the labels object", ErrBadLabels)
	}
	if err := l.Validate(); err != nil {
		return Labels{}, fmt.Errorf("read labels: %w", err)
	}
	return l, nil
}

// Validate reports every problem of l at once; the error wraps ErrBadLabels.
func (l Labels) Validate() error {
	var errs []error
	if l.Version != LabelsVersion {
		errs = append(errs, fmt.Errorf("version %d, want %d", l.Version, LabelsVersion))
	}
	seen := map[string]bool{}
	for i, f := range l.Files {
		if f.File == "" || !filepath.IsLocal(f.File) || strings.ContainsAny(f.File, `/\`) {
			errs = append(errs, fmt.Errorf("file %d: name %q is not a plain file name", i, f.File))
		}
		if seen[f.File] {
			errs = append(errs, fmt.Errorf("file %d: duplicate name %q", i, f.File))
		}
		seen[f.File] = true
		if f.Rows < 0 || f.IntervalMs < 0 {
			errs = append(errs, fmt.Errorf("file %q: negative rows or interval", f.File))
		}
		if len(f.Columns) == 0 {
			errs = append(errs, fmt.Errorf("file %q: no columns", f.File))
		}
		for j, w := range f.Windows {
			if !w.Kind.Valid() {
				errs = append(errs, fmt.Errorf("file %q window %d: unknown kind %q", f.File, j, w.Kind))
			}
			if w.End.Before(w.Start) {
				errs = append(errs, fmt.Errorf("file %q window %d: end %v before start %v", f.File, j, w.End, w.Start))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadLabels, err)
	}
	return nil
}

// CorpusOptions selects the shape of a corpus. The zero value of each field
// selects its default.
type CorpusOptions struct {
	// Seed selects the corpus; the same options give the same files.
	Seed uint64
	// Start is the time of the first reading of every file (default
	// 2026-01-05T00:00:00Z, a Monday).
	Start time.Time
	// MinRows and MaxRows bound the nominal length of a file (default 5000
	// and 30000); files with a seasonal break span at least five days.
	MinRows, MaxRows int
	// Intervals are the sampling intervals of univariate files (default 1s,
	// 1m, 5m). Seasonal breaks are only injected at 1m and slower.
	Intervals []time.Duration
	// Repeats is the number of univariate files per fault kind and interval
	// (default 1).
	Repeats int
	// Clean is the number of fault-free files per interval (default 2).
	Clean int
	// DeviceFiles is the number of multivariate device files, with 3 to 8
	// sensors, a correlation break and single-sensor faults (default 6).
	DeviceFiles int
}

func (o CorpusOptions) withDefaults() CorpusOptions {
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if o.MinRows <= 0 {
		o.MinRows = 5000
	}
	if o.MaxRows < o.MinRows {
		o.MaxRows = max(30000, o.MinRows)
	}
	if len(o.Intervals) == 0 {
		o.Intervals = []time.Duration{time.Second, time.Minute, 5 * time.Minute}
	}
	if o.Repeats <= 0 {
		o.Repeats = 1
	}
	if o.Clean == 0 {
		o.Clean = 2
	}
	if o.DeviceFiles == 0 {
		o.DeviceFiles = 6
	}
	return o
}

// corpusFile is the plan of one corpus file.
type corpusFile struct {
	name  string
	fleet *Fleet
}

// planCorpus plans every file of the corpus without writing anything.
func planCorpus(o CorpusOptions) ([]corpusFile, error) {
	o = o.withDefaults()
	var files []corpusFile
	add := func(name string, cfg Config) error {
		cfg.Seed = o.Seed*1_000_003 + uint64(len(files))
		fl, err := NewFleet(cfg)
		if err != nil {
			return fmt.Errorf("plan corpus file %s: %w", name, err)
		}
		files = append(files, corpusFile{name: name, fleet: fl})
		return nil
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0xc0de))
	rows := func() int { return o.MinRows + rng.IntN(o.MaxRows-o.MinRows+1) }
	fast := []string{"vibration", "current", "power", "voltage"}
	slow := []string{"temperature", "humidity", "power", "co2", "pressure"}
	uniDevice := func(iv time.Duration) Device {
		names := slow
		if iv < time.Minute {
			names = fast
		}
		s, _ := CatalogueSensor(names[rng.IntN(len(names))])
		return Device{ID: "dev", Sensors: []Sensor{s}, Interval: iv, Jitter: 0.1, GapRate: 0.002}
	}
	for _, iv := range o.Intervals {
		for _, k := range Kinds() {
			if k == CorrelationBreak || (k == SeasonalBreak && iv < time.Minute) {
				continue
			}
			for r := range o.Repeats {
				d := uniDevice(iv)
				n := rows()
				nf := 1 + rng.IntN(2)
				switch k {
				case Spike:
					nf = 2 + rng.IntN(3)
				case SeasonalBreak:
					n = max(n, int(5*24*time.Hour/iv)) // a daily pattern needs days
					nf = 1
				}
				end := o.Start.Add(time.Duration(n) * iv)
				faults := placeFaults(rng, d, o.Start, end, repeatKind(k, nf))
				name := fmt.Sprintf("uni_%s_%s_%d.csv", scaleName(iv), k, r+1)
				if err := add(name, Config{Start: o.Start, End: end, Devices: []Device{d}, Faults: faults}); err != nil {
					return nil, err
				}
			}
		}
		for c := range o.Clean {
			d := uniDevice(iv)
			end := o.Start.Add(time.Duration(rows()) * iv)
			name := fmt.Sprintf("clean_%s_%d.csv", scaleName(iv), c+1)
			if err := add(name, Config{Start: o.Start, End: end, Devices: []Device{d}}); err != nil {
				return nil, err
			}
		}
	}
	single := []Kind{Spike, LevelShift, Drift, Stuck, NoiseBurst}
	for i := range o.DeviceFiles {
		iv := time.Minute
		if i%2 == 1 {
			iv = 5 * time.Minute
		}
		d := NewDevices(o.Seed+uint64(i), 1, 3+i%6, iv)[0]
		d.ID = fmt.Sprintf("device-%02d", i+1)
		end := o.Start.Add(time.Duration(rows()) * iv)
		kinds := []Kind{CorrelationBreak}
		for range 2 + rng.IntN(2) {
			kinds = append(kinds, single[rng.IntN(len(single))])
		}
		if rng.IntN(2) == 0 {
			kinds = append(kinds, Dropout)
		}
		rng.Shuffle(len(kinds), func(a, b int) { kinds[a], kinds[b] = kinds[b], kinds[a] })
		faults := placeFaults(rng, d, o.Start, end, kinds)
		for j := range faults {
			if faults[j].Kind == Dropout { // a device file has complete rows
				faults[j].Sensors = sensorNames(d)
			}
		}
		name := fmt.Sprintf("device_%s_%02d.csv", scaleName(iv), i+1)
		if err := add(name, Config{Start: o.Start, End: end, Devices: []Device{d}, Faults: faults}); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func repeatKind(k Kind, n int) []Kind {
	out := make([]Kind, n)
	for i := range out {
		out[i] = k
	}
	return out
}

func sensorNames(d Device) []string {
	out := make([]string, len(d.Sensors))
	for i, s := range d.Sensors {
		out[i] = s.Name
	}
	return out
}

// placeFaults places one fault of each of kinds, in order, in consecutive
// slots between 25% and 95% of [start, end).
func placeFaults(rng *rand.Rand, d Device, start, end time.Time, kinds []Kind) []Fault {
	span := end.Sub(start)
	lo := start.Add(span / 4)
	slot := time.Duration(float64(span) * 0.7 / float64(len(kinds)))
	var out []Fault
	for i, k := range kinds {
		if f, ok := planOne(rng, d, k, lo.Add(time.Duration(i)*slot), slot); ok {
			out = append(out, f)
		}
	}
	return out
}

func scaleName(iv time.Duration) string {
	s := iv.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return s
}

// WriteCorpus writes a labelled corpus into dir (created if needed): CSV
// files in the input format of `vigil detect`, and LabelsFile. progress, if
// not nil, is called after each file is written. It returns the labels.
func WriteCorpus(ctx context.Context, dir string, opts CorpusOptions, progress func(file string, rows int)) (Labels, error) {
	files, err := planCorpus(opts)
	if err != nil {
		return Labels{}, fmt.Errorf("write corpus %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Labels{}, fmt.Errorf("write corpus: %w", err)
	}
	labels := Labels{Version: LabelsVersion, Seed: opts.Seed}
	for _, cf := range files {
		if err := ctx.Err(); err != nil {
			return Labels{}, fmt.Errorf("write corpus %s: %w", dir, err)
		}
		fl, err := writeCorpusFile(filepath.Join(dir, cf.name), cf.fleet)
		if err != nil {
			return Labels{}, fmt.Errorf("write corpus: %w", err)
		}
		fl.File = cf.name
		labels.Files = append(labels.Files, fl)
		if progress != nil {
			progress(cf.name, fl.Rows)
		}
	}
	b, err := json.MarshalIndent(labels, "", "  ")
	if err != nil {
		return Labels{}, fmt.Errorf("write corpus labels: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, LabelsFile), append(b, '\n'), 0o644); err != nil {
		return Labels{}, fmt.Errorf("write corpus labels: %w", err)
	}
	return labels, nil
}

func writeCorpusFile(path string, fl *Fleet) (FileLabels, error) {
	f, err := os.Create(path)
	if err != nil {
		return FileLabels{}, err
	}
	d := fl.cfg.Devices[0]
	rows, err := WriteCSV(f, fl, d.ID)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return FileLabels{}, fmt.Errorf("write %s: %w", path, err)
	}
	out := FileLabels{IntervalMs: d.Interval.Milliseconds(), Rows: rows, Columns: sensorNames(d), Windows: []Window{}}
	for _, ft := range fl.Faults() {
		out.Windows = append(out.Windows, Window{Kind: ft.Kind, Columns: ft.Sensors, Start: ft.Start.UTC(), End: ft.End.UTC()})
	}
	return out, nil
}

// CSVTimeFormat is the timestamp format of corpus CSV files: RFC 3339 in UTC
// with milliseconds.
const CSVTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// WriteCSV writes the readings of one device of fl as CSV: a header
// "timestamp,<sensor>,...", then one row per reading with an RFC 3339
// timestamp and each value at its sensor's resolution. A sensor missing
// from a reading (a single-sensor dropout) leaves its cell empty. It
// returns the number of data rows written.
func WriteCSV(w io.Writer, fl *Fleet, device string) (int, error) {
	di := slices.IndexFunc(fl.cfg.Devices, func(d Device) bool { return d.ID == device })
	if di < 0 {
		return 0, fmt.Errorf("write csv: %w: unknown device %q", ErrInvalid, device)
	}
	d := fl.cfg.Devices[di]
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("timestamp")
	for _, s := range d.Sensors {
		bw.WriteByte(',')
		bw.WriteString(s.Name)
	}
	bw.WriteByte('\n')
	rows := 0
	var buf []byte
	for r := range fl.Readings() {
		if r.Device != device {
			continue
		}
		buf = time.UnixMilli(r.Time).UTC().AppendFormat(buf[:0], CSVTimeFormat)
		k := 0
		for _, s := range d.Sensors {
			buf = append(buf, ',')
			if k < len(r.Fields) && r.Fields[k].Name == s.Name {
				buf = strconv.AppendFloat(buf, r.Fields[k].Value, 'f', s.Decimals, 64)
				k++
			}
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return rows, fmt.Errorf("write csv: %w", err)
		}
		rows++
	}
	if err := bw.Flush(); err != nil {
		return rows, fmt.Errorf("write csv: %w", err)
	}
	return rows, nil
}
