//! The charts of several traces on one axis: C on the test splits and on the probe (with
//! the band around C0), R, D, lambda, gamma, and both test accuracies.

use std::path::{Path, PathBuf};

use super::rows::TraceRow;
use crate::error::Result;
use crate::plot::{Chart, GUIDE_COLOR, Mark, Series, write_chart};

/// What the charts of several traces show.
pub(crate) struct ChartSpec<'a> {
    /// Label of the x axis.
    pub x_label: &'a str,
    /// The held value on the controller's probe, drawn with a band.
    pub c0: f64,
    /// The held value on the test splits, drawn with a band.
    pub c0_test: f64,
    /// Half-width of the band, relative to C0.
    pub band: f64,
    /// Machine, backend and data, for the titles.
    pub context: String,
}

/// A chart of one quantity of every trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Panel {
    /// C on p_t measured on the test splits (band around C0 on the test splits).
    Classification,
    /// C on the controller's probe (band around C0 on the probe).
    ClassificationProbe,
    /// R on the probe.
    Rate,
    /// D on the probe.
    Distortion,
    /// lambda.
    Lambda,
    /// gamma.
    Gamma,
}

impl Panel {
    const ALL: [Panel; 6] = [
        Panel::Classification,
        Panel::ClassificationProbe,
        Panel::Rate,
        Panel::Distortion,
        Panel::Lambda,
        Panel::Gamma,
    ];

    /// File stem.
    fn stem(self) -> &'static str {
        match self {
            Panel::Classification => "classification",
            Panel::ClassificationProbe => "classification_probe",
            Panel::Rate => "rate",
            Panel::Distortion => "distortion",
            Panel::Lambda => "lambda",
            Panel::Gamma => "gamma",
        }
    }

    /// Label of the y axis.
    fn y_label(self) -> &'static str {
        match self {
            Panel::Classification => "C on p_t, test splits, fresh noise (nats)",
            Panel::ClassificationProbe => "C on the controller's probe of p_t (nats)",
            Panel::Rate => "R (nats)",
            Panel::Distortion => "D (nats)",
            Panel::Lambda => "lambda",
            Panel::Gamma => "gamma",
        }
    }

    /// The quantity in a row.
    fn value(self, r: &TraceRow) -> f64 {
        match self {
            Panel::Classification => r.test.classification,
            Panel::ClassificationProbe => r.probe.classification,
            Panel::Rate => r.probe.rate,
            Panel::Distortion => r.probe.distortion,
            Panel::Lambda => r.lambda,
            Panel::Gamma => r.gamma,
        }
    }

    /// The held value the panel draws a band around, if any.
    fn held(self, spec: &ChartSpec) -> Option<f64> {
        match self {
            Panel::Classification => Some(spec.c0_test),
            Panel::ClassificationProbe => Some(spec.c0),
            _ => None,
        }
    }
}

/// The x axis of trace charts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    /// The trace's t (data position, s, or budget fraction).
    T,
    /// Adam steps spent so far (common to every method).
    AdamSteps,
}

impl Axis {
    fn of(self, r: &TraceRow) -> f64 {
        match self {
            Axis::T => r.t,
            Axis::AdamSteps => r.optimizer_steps as f64,
        }
    }

    /// File name suffix and label.
    fn suffix_and_label<'a>(self, spec: &ChartSpec<'a>) -> (&'static str, &'a str) {
        match self {
            Axis::T => ("", spec.x_label),
            Axis::AdamSteps => ("_by_steps", "Adam steps spent"),
        }
    }
}

/// Charts of C, R, D, lambda, gamma and the test accuracies against t, and again against
/// the Adam steps spent, for several traces (the first drawn thick), and the probe_gap chart
/// of the first (the path that holds C); returns the PNG paths.
pub(crate) fn write_trace_charts(
    dir: &Path,
    traces: &[(&str, &[TraceRow])],
    spec: &ChartSpec,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for axis in [Axis::T, Axis::AdamSteps] {
        let (suffix, x_label) = axis.suffix_and_label(spec);
        for panel in Panel::ALL {
            let chart = Chart {
                title: format!("{}: {}", panel.stem(), spec.context),
                x_label: x_label.into(),
                y_label: panel.y_label().into(),
                series: panel_series(traces, spec, axis, panel),
            };
            written.push(write_named(
                dir,
                &format!("{}{suffix}", panel.stem()),
                &chart,
            )?);
        }
        let chart = Chart {
            title: format!("test accuracy: {}", spec.context),
            x_label: x_label.into(),
            y_label: "accuracy (%)".into(),
            series: accuracy_series(traces, axis),
        };
        written.push(write_named(dir, &format!("accuracy{suffix}"), &chart)?);
    }
    if let Some((_, held)) = traces.first() {
        written.extend(write_probe_gap_chart(
            dir,
            held,
            spec.x_label,
            &spec.context,
        )?);
    }
    Ok(written)
}

fn write_named(dir: &Path, stem: &str, chart: &Chart) -> Result<PathBuf> {
    let path = dir.join(stem);
    write_chart(&path, chart)?;
    Ok(path.with_extension("png"))
}

/// One line per trace, and the band `C0 (1 +- band)` where the panel holds a value.
fn panel_series(
    traces: &[(&str, &[TraceRow])],
    spec: &ChartSpec,
    axis: Axis,
    panel: Panel,
) -> Vec<Series> {
    let mut series: Vec<Series> = traces
        .iter()
        .enumerate()
        .map(|(i, (name, rows))| Series {
            label: name.to_string(),
            points: rows.iter().map(|r| (axis.of(r), panel.value(r))).collect(),
            mark: if i == 0 { Mark::ThickLine } else { Mark::Line },
            color: i,
        })
        .collect();
    if let Some(level0) = panel.held(spec) {
        let x1 = traces
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| axis.of(r)))
            .fold(0.0, f64::max)
            .max(1e-9);
        for (sign, label) in [
            (1.0, format!("C0 +- {:.0}%", 100.0 * spec.band)),
            (-1.0, String::new()),
        ] {
            let level = level0 * (1.0 + sign * spec.band);
            series.push(Series {
                label,
                points: vec![(0.0, level), (x1, level)],
                mark: Mark::Line,
                color: GUIDE_COLOR,
            });
        }
    }
    series
}

/// Target accuracy (thick) and source accuracy (points) of every trace.
fn accuracy_series(traces: &[(&str, &[TraceRow])], axis: Axis) -> Vec<Series> {
    let mut series = Vec::new();
    for (i, (name, rows)) in traces.iter().enumerate() {
        let line = |get: fn(&TraceRow) -> f64| -> Vec<(f64, f64)> {
            rows.iter().map(|r| (axis.of(r), 100.0 * get(r))).collect()
        };
        series.push(Series {
            label: format!("{name}: target"),
            points: line(|r| r.target_accuracy),
            mark: Mark::ThickLine,
            color: i,
        });
        series.push(Series {
            label: format!("{name}: source"),
            points: line(|r| r.source_accuracy),
            mark: Mark::Points,
            color: i,
        });
    }
    series
}

/// The chart `probe_gap`: per domain, C on the unseen test split over C on the
/// controller's part of the probe along a process's trace, each with its band of two
/// standard errors of the test measurement. Where the probe is an unbiased estimate of C
/// on fresh examples the bands hold 1; a band that leaves 1 is a gap, beyond what the test
/// split resolves, between what the controller holds and what it is meant to hold. `None` for a
/// trace without per-domain probe values (paths that do not hold C, older traces).
fn write_probe_gap_chart(
    dir: &Path,
    rows: &[TraceRow],
    x_label: &str,
    context: &str,
) -> Result<Option<PathBuf>> {
    type Domain = fn(&TraceRow) -> Option<(f64, f64, f64)>;
    let source: Domain = |r| {
        let probe = r.controller_source_classification?;
        let test = &r.test.source;
        Some((
            test.functionals.classification,
            test.standard_errors.classification,
            probe,
        ))
    };
    let target: Domain = |r| {
        let probe = r.controller_target_classification?;
        let test = r.test.target?;
        Some((
            test.functionals.classification,
            test.standard_errors.classification,
            probe,
        ))
    };
    let mut series = Vec::new();
    for (i, (name, domain)) in [("source", source), ("target", target)]
        .into_iter()
        .enumerate()
    {
        let points: Vec<(f64, f64, f64)> = rows
            .iter()
            .filter_map(|r| domain(r).map(|(test, se, probe)| (r.t, test / probe, se / probe)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let x: Vec<f64> = points.iter().map(|p| p.0).collect();
        let lower: Vec<f64> = points.iter().map(|p| p.1 - 2.0 * p.2).collect();
        let upper: Vec<f64> = points.iter().map(|p| p.1 + 2.0 * p.2).collect();
        series.push(Series {
            label: String::new(),
            points: crate::plot::band(&x, &lower, &upper),
            mark: Mark::Band,
            color: i,
        });
        series.push(Series {
            label: format!("{name}: C test / C probe (band: 2 se of the test)"),
            points: points.iter().map(|p| (p.0, p.1)).collect(),
            mark: Mark::ThickLine,
            color: i,
        });
    }
    if series.is_empty() {
        return Ok(None);
    }
    let x1 = rows.iter().map(|r| r.t).fold(0.0, f64::max).max(1e-9);
    series.push(Series {
        label: "1: probe unbiased".into(),
        points: vec![(0.0, 1.0), (x1, 1.0)],
        mark: Mark::Line,
        color: GUIDE_COLOR,
    });
    let chart = Chart {
        title: format!("probe_gap: {context}"),
        x_label: x_label.into(),
        y_label: "C on unseen test images / C on the controller's probe".into(),
        series,
    };
    write_named(dir, "probe_gap", &chart).map(Some)
}
