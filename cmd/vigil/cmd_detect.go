package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigil-iot/vigil/internal/detect"
)

// detectOverrides is the JSON shape of --config: each part overrides the
// defaults field by field.
type detectOverrides struct {
	Series     *detect.Config       `json:"series"`
	Device     *detect.DeviceConfig `json:"device"`
	DeviceOnly *bool                `json:"device_only"`
	// HoldDeviceAlarms: flag every row of a device alarm (true, the
	// default) or only its first (false), see detect.CSVOptions.
	HoldDeviceAlarms *bool `json:"hold_device_alarms"`
}

func cmdDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	input := fs.String("input", "", "input CSV: timestamp column, then one or more numeric columns; label columns (label, anomaly, changepoint) are copied, not scored (required; - for stdin)")
	output := fs.String("output", "", "output CSV (default stdout)")
	config := fs.String("config", "", `JSON file overriding detector defaults: {"series": {...}, "device": {...}, "device_only": false, "hold_device_alarms": true}`)
	quiet := fs.Bool("quiet", false, "do not print progress to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vigil detect --input FILE [--output FILE] [--config FILE]\n\nScores every row of a CSV file with the streaming detectors, exactly as the live engine\nwould, and writes the rows back with anomaly_score and is_anomaly columns.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *input == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("--input is required and no arguments are accepted")
	}
	opts := detect.DefaultCSVOptions()
	if *config != "" {
		if err := loadDetectConfig(*config, &opts); err != nil {
			return err
		}
	}

	var in io.Reader = os.Stdin
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			opts.Size = st.Size()
		}
		in = f
	}
	var out io.Writer = stdout
	var outFile *os.File
	if *output != "" && *output != "-" {
		f, err := os.Create(*output)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		outFile = f
		out = f
	}
	bw := bufio.NewWriterSize(out, 256<<10)

	start := time.Now()
	if !*quiet {
		last := start
		opts.ProgressEvery = 2000
		opts.Progress = func(rows, bytes, size int64) {
			now := time.Now()
			if now.Sub(last) < time.Second {
				return
			}
			last = now
			if size > 0 {
				fmt.Fprintf(stderr, "detect: %d rows, %.0f%%\n", rows, 100*float64(bytes)/float64(size))
			} else {
				fmt.Fprintf(stderr, "detect: %d rows\n", rows)
			}
		}
	}
	stats, err := detect.ScoreCSV(ctx, in, bw, opts)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil {
			return fmt.Errorf("close output: %w", err)
		}
	}
	if !*quiet {
		fmt.Fprintf(stderr, "detect: %d rows, %d columns, %d anomalous rows, %d missing cells, %.2fs\n",
			stats.Rows, len(stats.Columns), stats.Anomalies, stats.Missing, time.Since(start).Seconds())
	}
	return nil
}

// loadDetectConfig applies the JSON overrides in path to opts; unknown
// fields are errors.
func loadDetectConfig(path string, opts *detect.CSVOptions) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read detect config: %w", err)
	}
	ov := detectOverrides{Series: &opts.Config, Device: &opts.Device, DeviceOnly: &opts.DeviceOnly, HoldDeviceAlarms: &opts.HoldDeviceAlarms}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ov); err != nil {
		return fmt.Errorf("decode detect config %s: %w", path, err)
	}
	if err := errors.Join(opts.Config.Validate(), opts.Device.Validate()); err != nil {
		return fmt.Errorf("detect config %s: %w", path, err)
	}
	return nil
}
