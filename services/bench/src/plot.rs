//! SVG plots of the open-loop curves (plotters, SVG backend: text is left to the viewer).

use super::openloop::Point;
use plotters::prelude::*;
use std::path::Path;

/// One configuration's curve and its colour.
pub struct Curve<'a> {
    pub label: &'a str,
    pub points: &'a [Point],
    pub color: RGBColor,
}

/// Latency (p50 and p99, log scale) against offered load.
pub fn latency(path: &Path, curves: &[Curve]) -> anyhow::Result<()> {
    let max_x = curves
        .iter()
        .flat_map(|c| c.points)
        .map(|p| p.offered)
        .fold(1.0, f64::max)
        * 1.05;
    let max_y = curves
        .iter()
        .flat_map(|c| c.points)
        .map(|p| p.p99)
        .filter(|y| y.is_finite())
        .fold(1.0, f64::max)
        * 2.0;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency against offered load (open loop)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max_x, (0.1f64..max_y).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered commands/s")
        .y_desc("latency, ms (log)")
        .draw()?;
    for c in curves {
        let ok: Vec<&Point> = c.points.iter().filter(|p| p.p50.is_finite()).collect();
        let p50 = ok.iter().map(|p| (p.offered, p.p50.max(0.1)));
        chart
            .draw_series(LineSeries::new(p50, c.color.stroke_width(2)))?
            .label(format!("{} p50", c.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.color.stroke_width(2)));
        let p99 = ok.iter().map(|p| (p.offered, p.p99.max(0.1)));
        let light = c.color.mix(0.45);
        chart
            .draw_series(LineSeries::new(p99, light.stroke_width(2)))?
            .label(format!("{} p99", c.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], light.stroke_width(2)));
        chart.draw_series(
            ok.iter()
                .map(|p| Circle::new((p.offered, p.p99.max(0.1)), 3, light.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Achieved against offered throughput: where each configuration stops keeping up.
pub fn throughput(path: &Path, curves: &[Curve]) -> anyhow::Result<()> {
    let max_x = curves
        .iter()
        .flat_map(|c| c.points)
        .map(|p| p.offered)
        .fold(1.0, f64::max)
        * 1.05;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Achieved against offered throughput", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max_x, 0f64..max_x)?;
    chart
        .configure_mesh()
        .x_desc("offered commands/s")
        .y_desc("achieved commands/s")
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (max_x, max_x)], BLACK.mix(0.3)))?;
    for c in curves {
        let color = c.color;
        chart
            .draw_series(LineSeries::new(
                c.points.iter().map(|p| (p.offered, p.achieved)),
                color.stroke_width(2),
            ))?
            .label(c.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
