//! Report prose generated from measured numbers: what held, what did not, and the
//! likely cause where one is measured.

use fep_thermo::{CheckSummary, SurfaceChecks};

/// The equation each identity tests.
fn equation(name: &str) -> &'static str {
    match name {
        "distortion_decreasing_in_lambda" => "dD/dlambda <= 0",
        "classification_decreasing_in_gamma" => "dC/dgamma <= 0",
        "envelope_lambda" => "dF/dlambda = D",
        "envelope_gamma" => "dF/dgamma = C",
        "maxwell" => "dD/dgamma = dC/dlambda",
        "concavity" => "Hessian of F negative semidefinite",
        "first_law" => "F(b) - F(a) = path integral of D dlambda + C dgamma",
        "minimality" => "F(m_a) <= J(theta_b; m_a) for neighbours b",
        _ => "",
    }
}

/// What else is known about the surface, for attributing violations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SurfaceContext {
    /// Points whose equilibration did not meet its criterion, of all points.
    pub not_at_equilibrium: Option<(usize, usize)>,
}

/// The markdown table of the checks: places, violations, residuals in units of their
/// error estimates, and the size of each estimate.
pub fn checks_table(checks: &SurfaceChecks) -> String {
    let mut md = String::from(
        "| identity | equation | places | violations | max residual / error | median | max discretisation | max noise (se) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (name, c) in checks.named() {
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} | {:.2e} | {:.2e} |\n",
            equation(name),
            c.checked,
            c.violations,
            c.max_ratio,
            c.median_ratio,
            c.max_discretisation,
            c.max_noise
        ));
    }
    md
}

/// The likely cause of a check's violations: residuals beyond both error estimates are
/// what neither covers, the distance of the measured points from equilibrium; which
/// estimate dominated the budget, and how many points missed their criterion, are stated.
fn cause(c: &CheckSummary, all: &SurfaceChecks, ctx: &SurfaceContext) -> String {
    let dominant = if c.max_discretisation > c.max_noise {
        "discretisation dominates the error budget (a finer grid would tighten it, not remove the violation)"
    } else {
        "noise dominates the error budget (more draws per example would tighten it, not remove the violation)"
    };
    let equilibrium = match ctx.not_at_equilibrium {
        Some((0, of)) => format!(
            "all {of} points met their stationarity criterion, which bounds how much the minibatch functionals still move, not how far the parameters are from the minimum"
        ),
        Some((missed, of)) => {
            format!("{missed} of {of} points did not meet their stationarity criterion")
        }
        None => "the equilibration of the points is not recorded".to_string(),
    };
    let m = &all.minimality;
    let direct = if m.violations > 0 {
        format!(
            "measured directly: at {} of {} neighbour pairs a point's own objective is beaten by its neighbour's parameters, by up to {:.3} nats (minimality), so those points are not minima",
            m.violations, m.checked, m.max_residual
        )
    } else {
        "minimality holds, so no point is measurably beaten by its neighbours' parameters"
            .to_string()
    };
    format!(
        "the residuals exceed both the grid's and the noise's error, so what remains is the distance of the measured points from the equilibrium of the objective (optimisation error, or SGD's stationary spread between neighbouring points); {direct}; {dominant}; {equilibrium}"
    )
}

/// One sentence per identity: whether it held, and by how much it failed where it did.
pub fn check_prose(checks: &SurfaceChecks, ctx: &SurfaceContext) -> String {
    let mut held = Vec::new();
    let mut md = String::new();
    for (name, c) in checks.named() {
        if c.passed() {
            held.push(format!(
                "{name} ({} places, largest {:.2})",
                c.checked, c.max_ratio
            ));
        } else {
            md.push_str(&format!(
                "- **{name}** (`{}`) fails at {} of {} places; the largest residual is {:.1} times its error estimate (median {:.2}). Likely cause: {}.\n",
                equation(name),
                c.violations,
                c.checked,
                c.max_ratio,
                c.median_ratio,
                cause(&c, checks, ctx)
            ));
        }
    }
    let rule = format!(
        "A place counts as a violation where its residual exceeds {} times its error estimate (discretisation and noise in quadrature, floor {:.0e}).",
        checks.settings.factor, checks.settings.floor
    );
    if held.len() == checks.named().len() {
        format!(
            "Every identity holds at every place. {rule} Largest residual per identity, in units of its error estimate: {}.\n",
            held.join(", ")
        )
    } else {
        let holds = if held.is_empty() {
            "No identity holds everywhere.".to_string()
        } else {
            format!(
                "Held everywhere (largest residual in units of its error estimate): {}.",
                held.join(", ")
            )
        };
        format!("{rule} {holds}\n\n{md}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fep_thermo::CheckSettings;

    #[test]
    fn prose_names_what_failed_and_why() {
        let mut checks = SurfaceChecks {
            settings: CheckSettings::default(),
            ..Default::default()
        };
        checks.maxwell = CheckSummary {
            checked: 25,
            violations: 3,
            max_residual: 0.2,
            max_ratio: 7.5,
            median_ratio: 1.1,
            max_discretisation: 0.05,
            max_noise: 0.001,
        };
        checks.envelope_lambda = CheckSummary {
            checked: 20,
            max_ratio: 0.8,
            ..Default::default()
        };
        let ctx = SurfaceContext {
            not_at_equilibrium: Some((2, 25)),
        };
        let text = check_prose(&checks, &ctx);
        assert!(text.contains("**maxwell**"), "{text}");
        assert!(text.contains("fails at 3 of 25 places"), "{text}");
        assert!(text.contains("7.5 times"), "{text}");
        assert!(text.contains("discretisation dominates"), "{text}");
        assert!(text.contains("2 of 25 points did not meet"), "{text}");
        assert!(
            text.contains("envelope_lambda (20 places, largest 0.80)"),
            "{text}"
        );
        let table = checks_table(&checks);
        assert_eq!(table.lines().count(), 2 + 8);
        checks.maxwell.violations = 0;
        let text = check_prose(&checks, &SurfaceContext::default());
        assert!(
            text.starts_with("Every identity holds at every place."),
            "{text}"
        );
    }
}
