//! Progress read from a trainer's log lines. fal's trainers do not promise a format, so this looks
//! for the common "step N/M" shape and reports nothing when a line does not have it.

/// Steps done out of the total, as the trainer reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepProgress {
    pub done: u32,
    pub total: u32,
}

impl StepProgress {
    pub fn fraction(&self) -> f64 {
        f64::from(self.done.min(self.total)) / f64::from(self.total.max(1))
    }
}

/// The step counter in a log line such as `Training step 120/1000, loss 0.04` or
/// `steps: 45%|… | 450/1000`. A line must mention "step" so that dates and sizes are not misread.
pub fn step_progress(line: &str) -> Option<StepProgress> {
    if !line.to_ascii_lowercase().contains("step") {
        return None;
    }
    let bytes = line.as_bytes();
    let mut found = None;
    for (slash, _) in line.match_indices('/') {
        let before = &line[..slash];
        let done_text: String = before
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let after = line[slash + 1..].trim_start();
        let total_text: String = after.chars().take_while(char::is_ascii_digit).collect();
        let (Ok(done), Ok(total)) = (done_text.parse::<u32>(), total_text.parse::<u32>()) else {
            continue;
        };
        // "1/2/2026" is a date, not a step counter.
        let next = slash + 1 + (line[slash + 1..].len() - after.len()) + total_text.len();
        let previous = before.trim_end().len().checked_sub(done_text.len() + 1);
        let in_a_date =
            bytes.get(next) == Some(&b'/') || previous.is_some_and(|index| bytes[index] == b'/');
        if in_a_date || total == 0 || done > total {
            continue;
        }
        found = Some(StepProgress { done, total });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_step_counters_in_common_shapes() {
        let cases = [
            ("Training step 120/1000, loss 0.0412", Some((120, 1000))),
            (
                "steps:  45%|████▌     | 450 / 1000 [02:10<02:40]",
                Some((450, 1000)),
            ),
            ("Step 3/3 done", Some((3, 3))),
            ("Preprocessing images", None),
            ("Uploaded 3/10 files", None),
            ("step at 1/2/2026", None),
            ("step 5/0", None),
        ];
        for (line, expected) in cases {
            let found = step_progress(line).map(|progress| (progress.done, progress.total));
            assert_eq!(found, expected, "{line}");
        }
    }
}
