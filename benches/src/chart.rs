//! The SVG chart beside `docs/benchmarks.md`: per workload, every client's ops/s relative to the
//! best peer (paired by round), as grouped bars. Relative, because the workloads' absolute rates
//! differ by two orders of magnitude.

use crate::report::{best_peer, paired_ratio, Row};
use crate::workloads::{Sample, Workload};
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 7] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x94, 0x67, 0xbd),
];

/// Tables of one run (one runtime), titled.
pub type Panel<'a> = (&'a str, &'a [(Workload, Vec<Row>)]);

/// Writes the chart to `path`: one panel per runtime, stacked.
pub fn write(path: &Path, panels: &[Panel]) -> Result<(), String> {
    // Clients in first-seen order, so each keeps one colour across groups and panels.
    let mut clients: Vec<String> = Vec::new();
    for (_, tables) in panels {
        for (_, rows) in tables.iter() {
            for r in rows {
                if !r.samples.is_empty() && !clients.contains(&r.client) {
                    clients.push(r.client.clone());
                }
            }
        }
    }
    let root = SVGBackend::new(path, (960, 420 * panels.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, (title, tables)) in root
        .split_evenly((panels.len().max(1), 1))
        .iter()
        .zip(panels)
    {
        panel(area, title, tables, &clients)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn panel(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    tables: &[(Workload, Vec<Row>)],
    clients: &[String],
) -> Result<(), String> {
    // (group, client index, ratio)
    let mut bars = Vec::new();
    for (g, (_, rows)) in tables.iter().enumerate() {
        let Some(best) = best_peer(rows) else {
            continue;
        };
        for r in rows.iter().filter(|r| !r.samples.is_empty()) {
            let c = clients.iter().position(|n| *n == r.client).unwrap_or(0);
            bars.push((g, c, paired_ratio(r, best, Sample::ops_per_sec)));
        }
    }
    let top = bars
        .iter()
        .map(|b| b.2)
        .filter(|x| x.is_finite())
        .fold(1.0f64, f64::max)
        * 1.45; // headroom for the legend
    let groups = tables.len();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let labels: Vec<String> = tables
        .iter()
        .enumerate()
        .map(|(i, (w, _))| format!("{} {}", i + 1, w.short()))
        .collect();
    let caption = format!("ops/s relative to the best Rust peer (paired median), {title}");
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups as f64, 0f64..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < labels.len() {
                labels[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc("× best peer")
        .draw()
        .map_err(e)?;
    let n = clients.len().max(1) as f64;
    let width = 0.8 / n;
    for (c, name) in clients.iter().enumerate() {
        let color = COLORS[c % COLORS.len()];
        let series = bars.iter().filter(|b| b.1 == c).map(|&(g, _, ratio)| {
            let x0 = g as f64 + 0.1 + c as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, ratio)], color.filled())
        });
        chart
            .draw_series(series)
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (groups as f64, 1.0)],
            BLACK.stroke_width(1),
        )))
        .map_err(e)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    Ok(())
}
