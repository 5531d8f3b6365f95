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
    /// What repays a loan in full on `--on`: the loan file's contract serviced day by day
    /// (`etr_domain::servicing`) through its operations, then the debt by component, the
    /// charges against the contract date's cap and the remaining schedule.
    Payoff {
        /// A JSON file: `{"principal": "10000.00", "annual_rate_percent": "36.5",
        /// "penalty_rate_percent": "20", "day_count": "actual/365", "method": "annuity",
        /// "contract_date": "2026-05-01", "periods": 3, "operations": [{"date":
        /// "2026-05-06", "repay": "500.00"}, {"date": …, "repay_early": "…", "recalculate":
        /// "term"}, {"date": …, "prolong_months": 1, "fee": "500.00"}, {"date": …,
        /// "stop_accrual": true}]}`; amounts as strings.
        #[arg(long)]
        loan_file: std::path::PathBuf,
        /// The payoff day, YYYY-MM-DD.
        #[arg(long)]
        on: String,
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
        Which::Payoff { loan_file, on } => {
            let text = std::fs::read_to_string(&loan_file)
                .with_context(|| format!("reading {}", loan_file.display()))?;
            let file: loan_file::Loan =
                serde_json::from_str(&text).context("--loan-file: not a loan file")?;
            let on = loan_file::date(&on).context("--on")?;
            let ledger = file.service()?;
            let payoff = ledger
                .payoff(on)
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
            let mut at = ledger.clone();
            at.advance_to(on)
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "on": on.to_string(),
                    "payoff": payoff,
                    "debt": at.debt,
                    "charges": at.charges,
                    "max_charges": at.max_charges(),
                    "credit": at.credit,
                    "standing": at.standing,
                    "schedule": at.schedule,
                }))?
            );
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

mod loan_file {
    use anyhow::Context as _;
    use etr_domain::schedule::{DayCount, Repayment};
    use etr_domain::servicing::{self, Contract, Ledger, Recalculate};
    use rust_decimal::Decimal;

    /// A loan as written in the file.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Loan {
        principal: String,
        annual_rate_percent: String,
        #[serde(default)]
        penalty_rate_percent: Option<String>,
        day_count: String,
        method: String,
        contract_date: String,
        periods: u32,
        #[serde(default)]
        operations: Vec<Operation>,
    }

    /// One operation on the loan, on its date.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Operation {
        date: String,
        repay: Option<String>,
        repay_early: Option<String>,
        recalculate: Option<String>,
        prolong_months: Option<u32>,
        fee: Option<String>,
        stop_accrual: Option<bool>,
        write_off: Option<bool>,
    }

    pub fn date(s: &str) -> anyhow::Result<time::Date> {
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
            .with_context(|| format!("`{s}`: expected YYYY-MM-DD"))
    }

    fn amount(s: &str) -> anyhow::Result<Decimal> {
        Decimal::from_str_exact(s)
            .ok()
            .filter(|a| a.scale() <= 2)
            .with_context(|| format!("`{s}`: expected roubles such as 1000.00"))
    }

    fn percent(s: &str) -> anyhow::Result<Decimal> {
        Decimal::from_str_exact(s)
            .map(|p| p / Decimal::ONE_HUNDRED)
            .with_context(|| format!("`{s}`: expected a percentage such as 36.5"))
    }

    fn refused(e: servicing::Error) -> anyhow::Error {
        anyhow::anyhow!("{e} ({})", e.code())
    }

    impl Loan {
        /// The ledger after every operation of the file.
        pub fn service(&self) -> anyhow::Result<Ledger> {
            let contract = Contract {
                principal: amount(&self.principal).context("principal")?,
                annual_rate: percent(&self.annual_rate_percent).context("annual_rate_percent")?,
                penalty_rate: match &self.penalty_rate_percent {
                    Some(p) => percent(p).context("penalty_rate_percent")?,
                    None => Decimal::ZERO,
                },
                day_count: DayCount::parse(&self.day_count)
                    .context("day_count: expected 30/360 or actual/365")?,
                method: match self.method.as_str() {
                    "annuity" => Repayment::Annuity,
                    "equal-principal" => Repayment::EqualPrincipal,
                    other => anyhow::bail!("method `{other}`: expected annuity or equal-principal"),
                },
                contract_date: date(&self.contract_date).context("contract_date")?,
                periods: self.periods,
            };
            let mut ledger = servicing::open(contract).map_err(refused)?;
            for (n, op) in self.operations.iter().enumerate() {
                let on = date(&op.date).with_context(|| format!("operation {}", n + 1))?;
                let done = if let Some(a) = &op.repay {
                    ledger.repay(on, amount(a)?).map(drop)
                } else if let Some(a) = &op.repay_early {
                    let how = match op.recalculate.as_deref() {
                        Some("term") => Recalculate::Term,
                        Some("instalment") | None => Recalculate::Instalment,
                        Some(other) => anyhow::bail!(
                            "operation {}: recalculate `{other}`: expected term or instalment",
                            n + 1
                        ),
                    };
                    ledger.repay_early(on, amount(a)?, how).map(drop)
                } else if let Some(months) = op.prolong_months {
                    let fee = op.fee.as_deref().map(amount).transpose()?;
                    ledger
                        .prolong(on, months, fee.unwrap_or(Decimal::ZERO))
                        .map(drop)
                } else if let Some(stopped) = op.stop_accrual {
                    ledger.set_accrual(on, stopped)
                } else if op.write_off == Some(true) {
                    ledger.write_off(on).map(drop)
                } else {
                    anyhow::bail!("operation {}: nothing to do", n + 1)
                };
                done.map_err(refused)
                    .with_context(|| format!("operation {} on {}", n + 1, op.date))?;
            }
            Ok(ledger)
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
