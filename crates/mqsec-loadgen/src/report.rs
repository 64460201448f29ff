//! The comparison table: one row per figure, one column per broker, and the mqsec/Mosquitto
//! ratio with the direction that counts as better.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// One measured figure for each broker (`None`: not measured, with the reason in `notes`).
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    pub better: Better,
    pub mqsec: Option<f64>,
    pub mosquitto: Option<f64>,
    /// mqsec / Mosquitto, when both exist.
    pub ratio: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub figures: Vec<Figure>,
    /// Failures, skips and side facts (e.g. publisher stalls: a broker dropped messages).
    pub notes: Vec<String>,
}

impl Report {
    /// Records `value` for `broker` ("mqsec" or "mosquitto") under the figure `name`.
    pub fn set(
        &mut self,
        name: &str,
        unit: &str,
        better: Better,
        broker: &str,
        value: Option<f64>,
    ) {
        let i = match self.figures.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.figures.push(Figure {
                    name: name.to_string(),
                    unit: unit.to_string(),
                    better,
                    mqsec: None,
                    mosquitto: None,
                    ratio: None,
                });
                self.figures.len() - 1
            }
        };
        let f = &mut self.figures[i];
        match broker {
            "mqsec" => f.mqsec = value,
            _ => f.mosquitto = value,
        }
        f.ratio = match (f.mqsec, f.mosquitto) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
    }

    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    pub fn to_table(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
        t.set_header(vec![
            "figure",
            "unit",
            "mqsec",
            "mosquitto",
            "mqsec/mosquitto",
        ]);
        let fmt = |v: Option<f64>| match v {
            None => "-".to_string(),
            Some(x) if x >= 100.0 => format!("{x:.0}"),
            Some(x) => format!("{x:.2}"),
        };
        for f in &self.figures {
            let ratio = match f.ratio {
                None => "-".to_string(),
                Some(r) => format!(
                    "{r:.2}x ({} is better)",
                    match f.better {
                        Better::Higher => "higher",
                        Better::Lower => "lower",
                    }
                ),
            };
            t.add_row(vec![
                f.name.clone(),
                f.unit.clone(),
                fmt(f.mqsec),
                fmt(f.mosquitto),
                ratio,
            ]);
        }
        let mut out = t.to_string();
        for n in &self.notes {
            out.push_str("\nnote: ");
            out.push_str(n);
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_needs_both_and_a_nonzero_base() {
        let mut r = Report::default();
        r.set("x", "msg/s", Better::Higher, "mosquitto", Some(200.0));
        assert_eq!(r.figures[0].ratio, None);
        r.set("x", "msg/s", Better::Higher, "mqsec", Some(300.0));
        assert_eq!(r.figures[0].ratio, Some(1.5));
        r.set("y", "us", Better::Lower, "mosquitto", Some(0.0));
        r.set("y", "us", Better::Lower, "mqsec", Some(3.0));
        assert_eq!(r.figures[1].ratio, None);
        let table = r.to_table();
        assert!(table.contains("1.50x (higher is better)"), "{table}");
    }
}
