//! `etr calc …`: the platform's money math for people who check numbers by hand. Nothing
//! here computes: it parses the command line into `etr_domain::schedule::Terms` and prints
//! what the domain returns.

use anyhow::Context as _;
use etr_domain::schedule::{self, DayCount, Repayment, Terms};
use rust_decimal::Decimal;
use std::str::FromStr as _;

#[derive(clap::Subcommand)]
pub enum Which {
    /// A preliminary repayment schedule: monthly periods from `--start`, interest rounded to
    /// kopecks half-to-even, the last instalment absorbing the rounding residual.
    Schedule {
        /// Principal in roubles, e.g. 100000.00.
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// Nominal annual rate in percent, e.g. 24.5.
        #[arg(long, allow_hyphen_values = true)]
        rate: String,
        /// Number of monthly periods.
        #[arg(long)]
        periods: u32,
        /// 30/360 | actual/365.
        #[arg(long, default_value = "30/360")]
        day_count: String,
        /// Issue date, YYYY-MM-DD.
        #[arg(long)]
        start: String,
        /// annuity | equal-principal | bullet.
        #[arg(long = "method", alias = "type", default_value = "annuity")]
        repayment: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The full cost of credit (ПСК, 353-FZ art. 6) of a list of cash flows, in percent a
    /// year (3 decimals) and in money.
    Psk {
        /// A JSON file: `[{"date": "2026-01-01", "amount": "-10000.00"}, …]`, the issue
        /// negative, in date order; amounts as strings.
        #[arg(long)]
        flows: std::path::PathBuf,
    },
}

pub fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Schedule {
            amount,
            rate,
            periods,
            day_count,
            start,
            repayment,
            json,
        } => {
            let terms = terms(&amount, &rate, periods, &day_count, &start, &repayment)?;
            let instalments = schedule::schedule(&terms)
                .with_context(|| "the schedule cannot be computed".to_owned())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "terms": terms,
                        "instalments": instalments,
                        "total_interest": schedule::total_interest(&instalments),
                    }))?
                );
            } else {
                println!(
                    "{:>3}  {:<10}  {:>5}  {:>14}  {:>14}  {:>14}  {:>14}",
                    "#", "date", "days", "payment", "principal", "interest", "balance"
                );
                for i in &instalments {
                    println!(
                        "{:>3}  {:<10}  {:>5}  {:>14}  {:>14}  {:>14}  {:>14}",
                        i.number, i.date, i.days, i.payment, i.principal, i.interest, i.balance
                    );
                }
                println!("total interest {}", schedule::total_interest(&instalments));
            }
            Ok(())
        }
        Which::Psk { flows } => {
            let text = std::fs::read_to_string(&flows)
                .with_context(|| format!("reading {}", flows.display()))?;
            let flows: Vec<flow_file::Input> = serde_json::from_str(&text)
                .context("--flows: expected a JSON list of {\"date\": \"YYYY-MM-DD\", \"amount\": \"-10000.00\"}")?;
            let flows = flows
                .into_iter()
                .enumerate()
                .map(|(n, f)| {
                    f.parse()
                        .with_context(|| format!("--flows, flow {}", n + 1))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let psk = etr_domain::psk::psk(&flows).context("no PSK for these flows")?;
            println!("{}", serde_json::to_string_pretty(&psk)?);
            Ok(())
        }
    }
}

mod flow_file {
    use anyhow::Context as _;
    use rust_decimal::Decimal;

    /// One flow as written in the file: both fields text, parsed exactly.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Input {
        date: String,
        amount: String,
    }

    impl Input {
        pub fn parse(self) -> anyhow::Result<etr_domain::psk::Flow> {
            let date = time::Date::parse(
                &self.date,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .with_context(|| format!("date `{}`: expected YYYY-MM-DD", self.date))?;
            let amount = Decimal::from_str_exact(&self.amount)
                .ok()
                .filter(|a| a.scale() <= 2)
                .with_context(|| {
                    format!(
                        "amount `{}`: expected roubles such as -10000.00",
                        self.amount
                    )
                })?;
            Ok(etr_domain::psk::Flow { date, amount })
        }
    }
}

fn terms(
    amount: &str,
    rate: &str,
    periods: u32,
    day_count: &str,
    start: &str,
    repayment: &str,
) -> anyhow::Result<Terms> {
    let principal = etr_domain::Money::parse_positive(amount, "RUB")
        .with_context(|| format!("--amount `{amount}`"))?
        .amount;
    let percent = Decimal::from_str(rate)
        .ok()
        .filter(|r| !r.is_sign_negative())
        .with_context(|| format!("--rate `{rate}` is not a percentage such as 24.5"))?;
    let day_count = DayCount::parse(day_count)
        .with_context(|| format!("--day-count `{day_count}`: expected 30/360 or actual/365"))?;
    let repayment = match repayment {
        "annuity" => Repayment::Annuity,
        "bullet" => Repayment::Bullet,
        "equal-principal" => Repayment::EqualPrincipal,
        other => anyhow::bail!("--method `{other}`: expected annuity, equal-principal or bullet"),
    };
    let start = time::Date::parse(
        start,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .with_context(|| format!("--start `{start}`: expected YYYY-MM-DD"))?;
    Ok(Terms {
        principal,
        annual_rate: percent / Decimal::ONE_HUNDRED,
        periods,
        start,
        day_count,
        repayment,
    })
}
