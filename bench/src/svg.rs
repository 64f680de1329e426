//! A tiny SVG chart writer for the report: line charts (one polyline per series, optional
//! logarithmic x axis) and grouped bar charts, with axes, ticks and a legend. Text only; no
//! dependencies.

use std::fmt::Write;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Series colours (colour-blind friendly: Okabe–Ito).
const COLOURS: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
];

/// One named series of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// "Nice" tick values covering `0..=max` (1, 2 or 5 times a power of ten apart).
pub fn ticks(max: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A number as a tick label: 12000 → "12k", 0.5 → "0.5".
pub fn label(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn frame(svg: &mut String, title: &str, x_title: &str, y_title: &str) {
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        escape(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 12.0,
        escape(x_title)
    );
    let _ = write!(
        svg,
        r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">{1}</text>"#,
        (TOP + HEIGHT - BOTTOM) / 2.0,
        escape(y_title)
    );
}

fn y_axis(svg: &mut String, y_max: f64) -> f64 {
    let ticks = ticks(y_max);
    let top = *ticks.last().unwrap_or(&1.0);
    for &tick in &ticks {
        let y = y_pos(tick, top);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(tick)
        );
    }
    top
}

fn y_pos(value: f64, top: f64) -> f64 {
    HEIGHT - BOTTOM - value / top * (HEIGHT - TOP - BOTTOM)
}

fn legend(svg: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let x = WIDTH - RIGHT + 14.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{y:.1}" dominant-baseline="middle">{}</text>"#,
            y - 6.0,
            COLOURS[i % COLOURS.len()],
            x + 18.0,
            escape(name)
        );
    }
}

/// A line chart; with `log_x`, x is on a base-10 logarithmic scale (all x must be > 0).
pub fn line_chart(
    title: &str,
    x_title: &str,
    y_title: &str,
    series: &[Series],
    log_x: bool,
) -> String {
    let mut svg = String::new();
    frame(&mut svg, title, x_title, y_title);
    let all = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.1.is_finite())
    };
    let y_max = all().map(|p| p.1).fold(0.0, f64::max);
    let top = y_axis(&mut svg, y_max);
    let fx = |x: f64| if log_x { x.max(1e-9).log10() } else { x };
    let (x_min, x_max) = if log_x {
        let min = all().map(|p| fx(p.0)).fold(f64::INFINITY, f64::min);
        let max = all().map(|p| fx(p.0)).fold(f64::NEG_INFINITY, f64::max);
        (min.floor(), max.ceil().max(min.floor() + 1.0))
    } else {
        (
            0.0,
            *ticks(all().map(|p| p.0).fold(0.0, f64::max))
                .last()
                .unwrap_or(&1.0),
        )
    };
    let x_pos =
        |x: f64| LEFT + (fx(x) - x_min) / (x_max - x_min).max(1e-9) * (WIDTH - LEFT - RIGHT);
    let x_ticks: Vec<f64> = if log_x {
        (x_min as i32..=x_max as i32)
            .map(|e| 10f64.powi(e))
            .collect()
    } else {
        ticks(x_max)
    };
    for tick in x_ticks {
        let x = x_pos(tick);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 16.0,
            label(tick)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", x_pos(x), y_pos(y, top)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for point in &points {
            let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    legend(&mut svg, &names);
    svg.push_str("</svg>\n");
    svg
}

/// A grouped bar chart: one group per category, one bar per series (`values[series][group]`,
/// NaN for a missing bar).
pub fn bar_chart(
    title: &str,
    y_title: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let mut svg = String::new();
    frame(&mut svg, title, "", y_title);
    let y_max = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let top = y_axis(&mut svg, y_max);
    let group_width = (WIDTH - LEFT - RIGHT) / groups.len().max(1) as f64;
    let bar_width = group_width * 0.8 / series.len().max(1) as f64;
    for (g, group) in groups.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_width + group_width * 0.1;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + group_width * 0.4,
            HEIGHT - BOTTOM + 16.0,
            escape(group)
        );
        for (s, (_, values)) in series.iter().enumerate() {
            let Some(&value) = values.get(g).filter(|v| v.is_finite()) else {
                continue;
            };
            let y = y_pos(value, top);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                x0 + s as f64 * bar_width,
                bar_width - 2.0,
                HEIGHT - BOTTOM - y,
                COLOURS[s % COLOURS.len()],
                x0 + s as f64 * bar_width + bar_width / 2.0 - 1.0,
                y - 3.0,
                label(value)
            );
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.0.as_str()).collect();
    legend(&mut svg, &names);
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        fn check(max: f64, expect: &[f64]) {
            assert_eq!(ticks(max), expect, "max {max}");
        }
        check(0.0, &[0.0, 1.0]);
        check(f64::NAN, &[0.0, 1.0]);
        check(10.0, &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        check(43.0, &[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        check(0.9, &[0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        check(180_000.0, &[0.0, 50_000.0, 100_000.0, 150_000.0, 200_000.0]);
    }

    #[test]
    fn labels_are_short() {
        fn check(value: f64, expect: &str) {
            assert_eq!(label(value), expect);
        }
        check(0.0, "0");
        check(0.5, "0.5");
        check(12.25, "12.25");
        check(2500.0, "2.5k");
        check(200_000.0, "200k");
        check(1_500_000.0, "1.5M");
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let series = vec![
            Series {
                name: "A & B".into(),
                points: vec![(10.0, 1.0), (100.0, f64::NAN), (1000.0, 3.0)],
            },
            Series {
                name: "C".into(),
                points: vec![(10.0, 2.0)],
            },
        ];
        for svg in [
            line_chart("t", "x", "y", &series, true),
            line_chart("t", "x", "y", &series, false),
            bar_chart(
                "t",
                "y",
                &["g1".into(), "g2".into()],
                &[
                    ("A".into(), vec![1.0, f64::NAN]),
                    ("B".into(), vec![2.0, 3.0]),
                ],
            ),
        ] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert_eq!(svg.matches('<').count(), svg.matches('>').count());
        }
        assert!(line_chart("t", "x", "y", &series, true).contains("A &amp; B"));
    }
}
