//! A small line chart written as a PNG (the `png` crate, no font library): series of (x, y) points with y in
//! 0..=1, a dashed target line per series, a grid at every 10 %, and axis labels in a built-in 3×5 pixel font.

use std::io;
use std::path::Path;

/// One line of the chart.
pub struct Series {
    pub label: String,
    pub color: [u8; 3],
    /// (x, y) points, x ascending, y in 0..=1.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed across the chart.
    pub target: Option<f64>,
}

/// Distinct colours for up to 8 series.
pub const COLORS: [[u8; 3]; 8] = [
    [26, 115, 232],
    [217, 48, 37],
    [30, 142, 62],
    [242, 153, 0],
    [161, 66, 244],
    [0, 151, 167],
    [233, 30, 99],
    [96, 125, 139],
];

/// 3×5 glyphs (rows top to bottom, 3 bits each, high bit left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '%' => [5, 1, 2, 4, 5],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        '/' => [1, 1, 2, 4, 4],
        ':' => [0, 2, 0, 2, 0],
        _ => letter(c.to_ascii_lowercase()),
    }
}

fn letter(c: char) -> [u8; 5] {
    match c {
        'a' => [2, 5, 7, 5, 5],
        'b' => [6, 5, 6, 5, 6],
        'c' => [3, 4, 4, 4, 3],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'g' => [3, 4, 5, 5, 3],
        'h' => [5, 5, 7, 5, 5],
        'i' => [7, 2, 2, 2, 7],
        'j' => [1, 1, 1, 5, 2],
        'k' => [5, 5, 6, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'm' => [5, 7, 7, 5, 5],
        'n' => [6, 5, 5, 5, 5],
        'o' => [2, 5, 5, 5, 2],
        'p' => [6, 5, 6, 4, 4],
        'q' => [2, 5, 5, 6, 3],
        'r' => [6, 5, 6, 5, 5],
        's' => [3, 4, 2, 1, 6],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'w' => [5, 5, 7, 7, 5],
        'x' => [5, 5, 2, 5, 5],
        'y' => [5, 5, 2, 2, 2],
        'z' => [7, 1, 2, 4, 7],
        _ => [0; 5],
    }
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line of width 2 (Bresenham, each point doubled downwards and right).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3], dash: bool) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err, mut n) = (x0, y0, dx + dy, 0u32);
        loop {
            if !dash || (n / 6) % 2 == 0 {
                for (ox, oy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    self.set(x + ox, y + oy, c);
                }
            }
            n += 1;
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text at (x, y) (top left), each font pixel `scale` pixels.
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3], scale: i64) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for (a, b) in (0..scale).flat_map(|a| (0..scale).map(move |b| (a, b))) {
                            let px = x + (k as i64 * 4 + col) * scale + a;
                            self.set(px, y + row as i64 * scale + b, c);
                        }
                    }
                }
            }
        }
    }
}

/// Draws `series` over x in 0..=`x_max` (labelled in `x_unit`) with `title`, into a `w`×`h` PNG at `path`.
pub fn write_png(
    path: &Path,
    title: &str,
    x_max: f64,
    x_unit: &str,
    series: &[Series],
    (w, h): (usize, usize),
) -> io::Result<()> {
    let mut c = Canvas {
        w,
        h,
        px: vec![255; w * h * 3],
    };
    let (left, right, top, bottom) = (70i64, 20i64, 40i64, 50i64);
    let (pw, ph) = (w as i64 - left - right, h as i64 - top - bottom);
    let x_of = |x: f64| left + ((x / x_max.max(1e-9)).clamp(0.0, 1.0) * pw as f64) as i64;
    let y_of = |y: f64| top + ph - (y.clamp(0.0, 1.0) * ph as f64) as i64;
    let (ink, grid) = ([29, 39, 51], [221, 227, 233]);
    for i in 0..=10 {
        let y = y_of(i as f64 / 10.0);
        for x in left..=left + pw {
            c.set(x, y, grid);
        }
        c.text(left - 40, y - 5, &format!("{}%", i * 10), ink, 2);
    }
    for i in 0..=5 {
        let xv = x_max * i as f64 / 5.0;
        let x = x_of(xv);
        for y in top..=top + ph {
            c.set(x, y, grid);
        }
        c.text(x - 10, top + ph + 8, &format!("{xv:.0}"), ink, 2);
    }
    c.text(left + pw / 2 - 20, top + ph + 30, x_unit, ink, 2);
    c.text(left, 10, title, ink, 3);
    for (k, s) in series.iter().enumerate() {
        if let Some(t) = s.target {
            c.line((left, y_of(t)), (left + pw, y_of(t)), s.color, true);
        }
        for pair in s.points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            c.line(
                (x_of(a.0), y_of(a.1)),
                (x_of(b.0), y_of(b.1)),
                s.color,
                false,
            );
        }
        let lx = left + pw - 220;
        let ly = top + 10 + k as i64 * 18;
        for (a, b) in (0..12).flat_map(|a| (0..12).map(move |b| (a, b))) {
            c.set(lx + a, ly + b, s.color);
        }
        c.text(lx + 18, ly + 1, &s.label, ink, 2);
    }
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(io::Error::other)?;
    writer.write_image_data(&c.px).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)
}
