//! The loan conveyor's runner: performs [`etr_domain::conveyor`] for every submitted
//! application (seed 000, sections 1, 6.1.4, 6.6, 6.9, 6.11, 6.12, 6.2.2).
//!
//! - [`Tracker`] is a projection of the application events: each moves its instance in the
//!   same transaction as the checkpoint; a referral opens an operator task there too.
//! - [`Executor`] wakes due instances, performs their activities through the ports (outside
//!   any transaction) and issues the commands that record the results under
//!   `platform:loan-conveyor/<application>/<step>`. A crash anywhere repeats the step when its
//!   lease (the attempt timeout) runs out; the stored outcome makes the repeated command the
//!   same command, answered with its first outcome.

use etr_documents::{agreement_key, Agreements, ContractParams, DocumentStore};
use etr_domain::application::{
    self, Application, Contract, Identification, Offer, Scoring, Verdict,
};
use etr_domain::conveyor::{
    step, Action, Activity, Input, Outcome, Policy, State, Versions, PROCESS,
};
use etr_domain::identification::Catalogue;
use etr_domain::ids::{derived_id, platform_command_id};
use etr_domain::legal;
use etr_domain::personal::PersonalData;
use etr_domain::ports::{
    Answer, BankruptcyRegistry, CardProvider, CardToBind, IdentityChecks, Notifier, PayoutOrder,
    RiskModule, ScoreRequest,
};
use etr_domain::product::{self, Product};
use etr_domain::{client, Actor, AggregateRef, ClientId, Currency, Envelope, Event, Money};
use etr_infra::vault::Vault;
use etr_projections::runtime::Projection;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{to_projection_error, Error};
use crate::runtime::{self, Commands, Issue, Issued};

/// Feeds the application events to the conveyor's instances.
pub struct Tracker {
    pub policy: Policy,
}

impl Projection for Tracker {
    fn name(&self) -> &'static str {
        PROCESS
    }

    /// Process state is not a read model: it is never rebuilt blue/green.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(), etr_projections::Error> {
        let Event::Application(application_event) = event else {
            return Ok(());
        };
        let id = envelope.aggregate_id;
        let instance = runtime::load::<State>(tx, PROCESS, id)
            .await
            .map_err(to_projection_error)?;
        let (state, actions) = step(
            instance.state,
            Input::Event {
                client_id: envelope.client_id,
                application_id: id,
                at: envelope.occurred_at,
                event: application_event.clone(),
            },
            &self.policy,
        );
        let Some(state) = state else { return Ok(()) };
        let correlation = instance
            .correlation_id
            .unwrap_or_else(|| envelope.correlation_id.clone());
        runtime::store(
            tx,
            PROCESS,
            id,
            envelope.client_id.0,
            &correlation,
            &state,
            timer(&actions),
        )
        .await
        .map_err(to_projection_error)?;
        if let application::Event::ApplicationReferred { stage, reasons, .. } = application_event {
            open_task(
                tx,
                derived_id(id, &format!("review/{stage}/{}", envelope.sequence)),
                &format!("review_{stage}"),
                id,
                envelope.client_id,
                &reasons.join("; "),
            )
            .await
            .map_err(to_projection_error)?;
        }
        // Notifications go out through the executor (the port is not called inside the
        // transaction): here they are only queued, once per event.
        for action in actions {
            if let Action::Notify { text } = action {
                sqlx::query(
                    "INSERT INTO client_notifications (client_id, dedup_key, text) VALUES ($1, $2, $3) \
                     ON CONFLICT (dedup_key) DO NOTHING",
                )
                .bind(envelope.client_id.0)
                .bind(format!("{PROCESS}/{}", envelope.event_id))
                .bind(text)
                .execute(&mut *tx)
                .await
                .map_err(etr_projections::Error::from)?;
            }
        }
        Ok(())
    }
}

/// The timer a list of actions leaves: `Some(Some(t))` set, `Some(None)` cleared, `None` kept.
fn timer(actions: &[Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().rev().find_map(|a| match a {
        Action::WakeAt(t) => Some(Some(*t)),
        Action::ClearTimer => Some(None),
        _ => None,
    })
}

async fn open_task(
    tx: &mut PgConnection,
    task_id: Uuid,
    kind: &str,
    application: Uuid,
    client: ClientId,
    reason: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO operator_tasks (task_id, kind, application_id, client_id, reason) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (task_id) DO NOTHING",
    )
    .bind(task_id)
    .bind(kind)
    .bind(application)
    .bind(client.0)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The lender's details printed on the contract (configuration).
#[derive(Debug, Clone)]
pub struct Lender {
    pub name: String,
    pub ogrn: String,
    pub inn: String,
    pub address: String,
}

impl Default for Lender {
    fn default() -> Self {
        Lender {
            name: "ООО МКК «ЕТР Финанс»".into(),
            ogrn: "1217700000001".into(),
            inn: "7700000001".into(),
            address: "125009, г. Москва, ул. Тверская, д. 1".into(),
        }
    }
}

/// What the conveyor decides with (configuration).
#[derive(Debug, Clone)]
pub struct Rules {
    pub products: Vec<Product>,
    pub identification: Catalogue,
    pub versions: Versions,
    /// PDN above this (percent) declines (Bank of Russia 6579-U leaves the limit to the lender).
    pub pdn_decline_above: Decimal,
    /// Scores below this decline.
    pub decline_below_score: u32,
    /// Scores below this (and at or above the decline bound) go to an operator.
    pub review_below_score: u32,
    pub lender: Lender,
}

/// The external systems the conveyor asks.
#[derive(Clone)]
pub struct Ports {
    pub identity: Arc<dyn IdentityChecks>,
    pub bankruptcy: Arc<dyn BankruptcyRegistry>,
    pub risk: Arc<dyn RiskModule>,
    /// Card / payout providers by name (`sbc`, `tinkoff`, `elecsnet`).
    pub cards: BTreeMap<String, Arc<dyn CardProvider>>,
    pub notifier: Arc<dyn Notifier>,
}

/// Wakes due instances, performs their activities and records the results.
pub struct Executor {
    pub pool: PgPool,
    pub policy: Policy,
    pub rules: Rules,
    pub ports: Ports,
    pub vault: Vault,
    pub agreements: Arc<Agreements>,
    pub documents: DocumentStore,
    pub commands: Arc<dyn Commands>,
    /// How often due timers are looked for.
    pub poll: Duration,
}

/// Figures of one pass of the executor.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pass {
    pub woken: usize,
}

/// Why an activity did not produce an outcome.
struct Failure {
    transient: bool,
    reason: String,
}

fn transient(reason: impl Into<String>) -> Failure {
    Failure {
        transient: true,
        reason: reason.into(),
    }
}

fn definite(reason: impl Into<String>) -> Failure {
    Failure {
        transient: false,
        reason: reason.into(),
    }
}

impl From<etr_infra::Error> for Failure {
    fn from(e: etr_infra::Error) -> Self {
        match e {
            etr_infra::Error::Erased(_) | etr_infra::Error::Crypto(_) => definite(e.to_string()),
            other => transient(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        transient(format!("postgres: {e}"))
    }
}

fn answer<T>(what: &str, answer: Answer<T>) -> Result<Result<T, String>, Failure> {
    match answer {
        Answer::Done(v) => Ok(Ok(v)),
        Answer::Refused(reason) => Ok(Err(reason)),
        Answer::Unavailable(reason) => Err(transient(format!("{what}: {reason}"))),
    }
}

impl Executor {
    /// Runs forever.
    pub async fn run(self) {
        let this = Arc::new(self);
        loop {
            match this.clone().pass().await {
                Ok(pass) if pass.woken > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "loan conveyor pass failed; retrying"),
            }
            tokio::time::sleep(this.poll).await;
        }
    }

    /// Wakes every due instance (up to 32) and performs their actions concurrently.
    pub async fn pass(self: Arc<Self>) -> Result<Pass, Error> {
        let now = OffsetDateTime::now_utc();
        let work = runtime::take_due(
            &self.pool,
            PROCESS,
            now,
            32,
            |s: State| step(Some(s), Input::Due { now }, &self.policy),
            timer,
        )
        .await?;
        let woken = work.len();
        let mut tasks = Vec::new();
        for w in work {
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                this.perform(w.id, ClientId(w.client), &w.correlation_id, w.actions)
                    .await
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "conveyor step failed; retried when due"),
                Err(e) => tracing::warn!(error = %e, "conveyor task failed"),
            }
        }
        self.deliver_notifications().await?;
        Ok(Pass { woken })
    }

    /// Performs the actions of one instance, then the actions its results lead to.
    async fn perform(
        &self,
        id: Uuid,
        client: ClientId,
        correlation: &str,
        actions: Vec<Action>,
    ) -> Result<(), Error> {
        let mut queue = actions;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for action in queue {
                match action {
                    Action::Perform(activity) => {
                        let now = OffsetDateTime::now_utc();
                        let timeout = std::time::Duration::try_from(self.policy.attempt_timeout)
                            .unwrap_or(Duration::from_secs(30));
                        let input = match tokio::time::timeout(
                            timeout,
                            self.activity(id, client, &activity),
                        )
                        .await
                        {
                            Ok(Ok(outcome)) => Input::Performed {
                                now: OffsetDateTime::now_utc(),
                                activity,
                                outcome,
                            },
                            Ok(Err(failure)) => {
                                tracing::info!(application = %id, step = %activity.step(), transient = failure.transient, reason = %failure.reason, "conveyor activity failed");
                                Input::Failed {
                                    now: OffsetDateTime::now_utc(),
                                    activity,
                                    transient: failure.transient,
                                    reason: failure.reason,
                                }
                            }
                            Err(_) => Input::Failed {
                                now,
                                activity,
                                transient: true,
                                reason: "no answer in time".into(),
                            },
                        };
                        next.extend(self.advance(id, client, correlation, input).await?);
                    }
                    Action::Issue { step, command } => {
                        self.issue(id, client, correlation, &step, command).await?;
                        next.extend(
                            self.advance(id, client, correlation, Input::Recorded { step })
                                .await?,
                        );
                    }
                    Action::Notify { text } => {
                        let key = format!("{PROCESS}/{id}/{}", derived_id(id, &text));
                        self.queue_notification(client, &key, &text).await?;
                    }
                    Action::DeadLetter { reason } => {
                        self.dead_letter(id, &reason).await?;
                    }
                    Action::WakeAt(_) | Action::ClearTimer => {}
                }
            }
            queue = next;
        }
        Ok(())
    }

    /// Steps an instance with an input and stores it; returns the actions to perform.
    async fn advance(
        &self,
        id: Uuid,
        client: ClientId,
        correlation: &str,
        input: Input,
    ) -> Result<Vec<Action>, Error> {
        runtime::advance(
            &self.pool,
            PROCESS,
            (&id, client.0, correlation),
            |s: Option<State>| step(s, input, &self.policy),
            timer,
        )
        .await
    }

    async fn issue(
        &self,
        id: Uuid,
        client: ClientId,
        correlation: &str,
        step: &str,
        command: application::Command,
    ) -> Result<(), Error> {
        let name = command.name();
        let issued = self
            .commands
            .issue(Issue {
                command_id: platform_command_id(PROCESS, id, step),
                correlation_id: correlation.to_owned(),
                actor: Actor::system("loan-conveyor"),
                command: etr_domain::Command::Application {
                    client_id: client,
                    application_id: id,
                    command,
                },
            })
            .await
            .map_err(Error::CommandNotTaken)?;
        if let Issued::Rejected { code } = issued {
            tracing::info!(application = %id, command = name, code, "conveyor command refused; the application moved on");
        }
        Ok(())
    }

    async fn queue_notification(
        &self,
        client: ClientId,
        key: &str,
        text: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO client_notifications (client_id, dedup_key, text) VALUES ($1, $2, $3) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(client.0)
        .bind(key)
        .bind(text)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sends queued notifications through the port (at least once; the key makes a repeat
    /// a no-op at the notification service). Rows are claimed in one statement and the port
    /// is called outside any transaction; a claim left by a runner that died is taken again
    /// after 30 s.
    async fn deliver_notifications(&self) -> Result<usize, Error> {
        let claimed: Vec<(i64, Uuid, String, String)> = sqlx::query_as(
            "UPDATE client_notifications SET claimed_at = clock_timestamp() WHERE id IN ( \
                 SELECT id FROM client_notifications WHERE sent_at IS NULL \
                 AND (claimed_at IS NULL OR claimed_at < clock_timestamp() - interval '30 seconds') \
                 ORDER BY id LIMIT 32 FOR UPDATE SKIP LOCKED) \
             RETURNING id, client_id, dedup_key, text",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut sent = 0;
        for (row, client, key, text) in claimed {
            match self
                .ports
                .notifier
                .notify(ClientId(client), &key, &text)
                .await
            {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE client_notifications SET sent_at = clock_timestamp() WHERE id = $1",
                    )
                    .bind(row)
                    .execute(&self.pool)
                    .await?;
                    sent += 1;
                }
                Err(e) => tracing::warn!(%client, error = %e, "notification not sent; retried"),
            }
        }
        Ok(sent)
    }

    async fn dead_letter(&self, id: Uuid, reason: &str) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO process_dead_letters (process, instance_id, reason, state) \
             SELECT process, instance_id, $3, state FROM process_instances WHERE process = $1 AND instance_id = $2",
        )
        .bind(PROCESS)
        .bind(id)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        tracing::warn!(application = %id, reason, "conveyor step parked in the dead letters");
        Ok(())
    }

    // ---- activities -----------------------------------------------------------------------

    async fn activity(
        &self,
        id: Uuid,
        client: ClientId,
        activity: &Activity,
    ) -> Result<Outcome, Failure> {
        let application = self.application(client, id).await?;
        let registry = self.client(client).await?;
        match activity {
            Activity::Identify => self.identify(id, client, &application, &registry).await,
            Activity::LegalChecks => self.legal_checks(client, &registry).await,
            Activity::Score => self.score(id, client, &application, &registry).await,
            Activity::GenerateContract => self.contract(id, client, &application, &registry).await,
            Activity::BindCard { binding_id } => {
                self.bind_card(client, &application, *binding_id).await
            }
            Activity::Payout => self.payout(id, client, &application).await,
        }
    }

    async fn application(&self, client: ClientId, id: Uuid) -> Result<Application, Failure> {
        match self
            .commands
            .state(AggregateRef::application(id))
            .await
            .map_err(transient)?
        {
            Some(etr_domain::State::Application(a)) if a.client_id == Some(client) => Ok(*a),
            _ => Err(definite(format!("application {id} does not exist"))),
        }
    }

    async fn client(&self, client: ClientId) -> Result<client::Client, Failure> {
        match self
            .commands
            .state(AggregateRef::client(client))
            .await
            .map_err(transient)?
        {
            Some(etr_domain::State::Client(c)) => Ok(*c),
            _ => Err(definite(format!("client {client} is not registered"))),
        }
    }

    async fn personal(
        &self,
        client: ClientId,
        registry: &client::Client,
    ) -> Result<PersonalData, Failure> {
        let sealed = registry
            .personal
            .as_ref()
            .ok_or_else(|| definite("the client has no personal data"))?;
        Ok(self.vault.open(client, sealed).await?)
    }

    async fn identify(
        &self,
        id: Uuid,
        client: ClientId,
        application: &Application,
        registry: &client::Client,
    ) -> Result<Outcome, Failure> {
        let data = self.personal(client, registry).await?;
        let failed =
            |reasons: Vec<String>| Outcome::Identification(Identification::Failed { reasons });
        if let Some(passport) = &data.passport {
            if etr_infra::invalid_passports::is_invalid(&self.pool, &passport.number).await? {
                return Ok(failed(vec![format!(
                    "passport {} {} is on the MVD list of invalid passports",
                    passport.number.series(),
                    passport.number.number()
                )]));
            }
        }
        let version = self
            .rules
            .versions
            .pick(registry.loans_disbursed > 0, &application.channel)
            .ok_or_else(|| definite("no process version matches the client"))?;
        let mut provided = data.provided();
        for document in &registry.documents {
            if let Ok(datum) = serde_json::from_value::<etr_domain::identification::Datum>(
                serde_json::Value::String(document.kind.clone()),
            ) {
                provided.insert(datum);
            }
        }
        let mut refusals = Vec::new();
        for method in self.rules.identification.available(&provided) {
            if method.manual {
                if version.skip_manual_identification {
                    continue;
                }
                let ticket_id = derived_id(id, "photo-identification");
                let mut tx = self.pool.begin().await?;
                open_task(
                    &mut tx,
                    ticket_id,
                    "photo_identification",
                    id,
                    client,
                    &format!("{}: an operator compares the photos", method.name),
                )
                .await
                .map_err(|e| transient(e.to_string()))?;
                tx.commit().await?;
                return Ok(Outcome::Identification(Identification::ManualCheck {
                    method: method.id.clone(),
                    reason: format!("{} needs an operator", method.name),
                    ticket_id,
                }));
            }
            match answer(
                &method.id,
                self.ports.identity.confirm(&method.id, &data).await,
            )? {
                Ok(()) => {
                    return Ok(Outcome::Identification(Identification::Identified {
                        method: method.id.clone(),
                    }))
                }
                Err(reason) => refusals.push(reason),
            }
        }
        if refusals.is_empty() {
            refusals.push("no identification method is available for the data provided".into());
        }
        Ok(failed(refusals))
    }

    async fn legal_checks(
        &self,
        client: ClientId,
        registry: &client::Client,
    ) -> Result<Outcome, Failure> {
        let data = self.personal(client, registry).await?;
        let mut documents = Vec::new();
        if let Some(p) = &data.passport {
            documents.push(legal::Document::Passport(p.number.clone()));
        }
        if let Some(inn) = &data.inn {
            documents.push(legal::Document::Inn(inn.clone()));
        }
        if let Some(snils) = &data.snils {
            documents.push(legal::Document::Snils(snils.clone()));
        }
        let subject = legal::Subject {
            full_name: data.full_name(),
            birth_date: data.birth_date,
            documents,
        };
        let mut hits = etr_infra::watchlists::check(&self.pool, &subject).await?;
        let cases = self
            .ports
            .bankruptcy
            .lookup(&subject)
            .await
            .map_err(|e| transient(format!("bankruptcy register: {e}")))?;
        hits.extend(legal::bankruptcy_hits(&cases));
        let policy = etr_infra::watchlists::policy(&self.pool).await?;
        Ok(Outcome::LegalChecks(match legal::verdict(&hits, &policy) {
            legal::Verdict::Passed => Verdict::Passed,
            legal::Verdict::ManualReview { reasons } => Verdict::ManualReview { reasons },
            legal::Verdict::Declined { reasons } => Verdict::Declined { reasons },
        }))
    }

    async fn score(
        &self,
        id: Uuid,
        client: ClientId,
        application: &Application,
        registry: &client::Client,
    ) -> Result<Outcome, Failure> {
        let data = self.personal(client, registry).await?;
        let requested = application
            .requested
            .ok_or_else(|| definite("the application has no requested amount"))?;
        let cleared = application.reviews_cleared.iter().any(|s| s == "scoring");
        let mut review = Vec::new();
        if !cleared {
            for (other, kind) in self.vault.duplicates(client).await? {
                review.push(format!(
                    "possible duplicate: the same {kind} as client {other}"
                ));
            }
        }
        let request = ScoreRequest {
            client_id: client,
            application_id: id,
            requested,
            term: application.term,
            monthly_income: data.monthly_income,
            repeat_client: registry.loans_disbursed > 0,
        };
        let score = answer("risk module", self.ports.risk.score(&request).await)?
            .map_err(|reason| definite(format!("risk module refused: {reason}")))?;
        if score < self.rules.decline_below_score {
            return Ok(Outcome::Scoring(Scoring::Declined {
                reasons: vec![format!(
                    "risk score {score} is below {}",
                    self.rules.decline_below_score
                )],
                score: Some(score),
                pdn_percent: None,
            }));
        }
        if score < self.rules.review_below_score && !cleared {
            review.push(format!(
                "risk score {score} is below {}",
                self.rules.review_below_score
            ));
        }
        // The contract is concluded on the lender's (Moscow) day: the loan's first business day.
        let contract_date = OffsetDateTime::now_utc()
            .to_offset(crate::day_close::MOSCOW)
            .date();
        let existing = self.existing_monthly_payments(client).await?;
        let mut offers = Vec::new();
        let mut pdn_percent = None;
        let mut refusals = Vec::new();
        let mut candidates: Vec<&Product> = self.rules.products.iter().collect();
        if let Some(wanted) = &application.product_id {
            candidates.sort_by_key(|p| &p.id != wanted);
        }
        for product in candidates {
            if offers.len() == 3 {
                break;
            }
            let made =
                match product::offer(product, requested.amount, application.term, contract_date) {
                    Ok(made) => made,
                    Err(e) => {
                        refusals.push(format!("{}: {e}", product.id));
                        continue;
                    }
                };
            let term_days = etr_domain::schedule::term_days(contract_date, &made.instalments)
                .unwrap_or(application.term);
            if let Some(income) = data.monthly_income {
                match etr_domain::pdn::pdn(
                    income,
                    existing,
                    &made.instalments,
                    term_days,
                    self.rules.pdn_decline_above,
                ) {
                    Ok(pdn) if pdn.verdict == etr_domain::pdn::Verdict::Decline => {
                        refusals.push(format!(
                            "{}: PDN {} % is above {} %",
                            product.id, pdn.percent, self.rules.pdn_decline_above
                        ));
                        pdn_percent = pdn_percent.or(Some(pdn.percent));
                        continue;
                    }
                    Ok(pdn) => {
                        pdn_percent =
                            Some(pdn_percent.map_or(pdn.percent, |p: Decimal| p.max(pdn.percent)));
                    }
                    Err(e) => refusals.push(format!("{}: {e}", product.id)),
                }
            }
            let unit = match product.pricing {
                product::Pricing::Monthly { .. } => "months",
                product::Pricing::Daily { .. } => "days",
            };
            offers.push(Offer {
                offer_id: derived_id(id, &format!("offer/{}", product.id)),
                product_id: made.product_id,
                amount: Money::new(made.amount, Currency::Rub),
                term: made.term,
                term_unit: unit.into(),
                contract_date: made.contract_date,
                schedule: made.instalments,
                charges: made.charges,
                psk_percent: made.psk.percent,
                psk_money: made.psk.money,
                servicing: Some(product.servicing()),
            });
        }
        if offers.is_empty() {
            if refusals.is_empty() {
                refusals.push("no product in the catalogue".into());
            }
            return Ok(Outcome::Scoring(Scoring::Declined {
                reasons: refusals,
                score: Some(score),
                pdn_percent,
            }));
        }
        if !review.is_empty() {
            return Ok(Outcome::Scoring(Scoring::ManualReview {
                reasons: review,
                score,
                pdn_percent,
            }));
        }
        Ok(Outcome::Scoring(Scoring::Approved {
            offers,
            score,
            pdn_percent,
            expires_at: OffsetDateTime::now_utc() + self.policy.sign_within,
        }))
    }

    /// The average monthly payments of the client's active loans (read model), roubles.
    async fn existing_monthly_payments(&self, client: ClientId) -> Result<Decimal, Failure> {
        let states: Vec<sqlx::types::Json<etr_domain::loan::Loan>> = sqlx::query_scalar(
            "SELECT state FROM rm_loans WHERE client_id = $1 AND status IN ('active', 'overdue')",
        )
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(states
            .iter()
            .filter_map(|l| {
                let terms = l.0.terms.as_ref()?;
                let days = etr_domain::schedule::term_days(terms.contract_date, &terms.schedule)?;
                etr_domain::pdn::average_monthly_payment(&terms.schedule, days)
            })
            .sum())
    }

    async fn contract(
        &self,
        id: Uuid,
        client: ClientId,
        application: &Application,
        registry: &client::Client,
    ) -> Result<Outcome, Failure> {
        let data = self.personal(client, registry).await?;
        let offer = application
            .chosen()
            .ok_or_else(|| definite("no offer was chosen"))?;
        let text = |d: Decimal| format!("{:.2}", d);
        let total: Decimal = offer.schedule.iter().map(|i| i.payment).sum();
        let term_days = etr_domain::schedule::term_days(offer.contract_date, &offer.schedule)
            .unwrap_or(offer.term);
        let rate_text = match self
            .rules
            .products
            .iter()
            .find(|p| p.id == offer.product_id)
        {
            Some(Product {
                pricing: product::Pricing::Daily { daily_rate, .. },
                ..
            }) => format!(
                "{} % в день",
                (*daily_rate * Decimal::from(100)).normalize()
            ),
            Some(Product {
                pricing: product::Pricing::Monthly { annual_rate, .. },
                ..
            }) => format!(
                "{} % годовых",
                (*annual_rate * Decimal::from(100)).normalize()
            ),
            None => String::new(),
        };
        let params = ContractParams {
            contract_number: format!("{}", id.simple())
                .chars()
                .take(12)
                .collect::<String>()
                .to_uppercase(),
            contract_date: offer.contract_date.to_string(),
            client: etr_documents::Client {
                full_name: data.full_name(),
                birth_date: data.birth_date.to_string(),
                passport: data
                    .passport
                    .as_ref()
                    .map(|p| format!("{} {}", p.number.series(), p.number.number()))
                    .unwrap_or_default(),
                address: data.registration_address.clone().unwrap_or_default(),
                phone: data.phone.as_str().to_owned(),
            },
            lender: etr_documents::Lender {
                name: self.rules.lender.name.clone(),
                ogrn: self.rules.lender.ogrn.clone(),
                inn: self.rules.lender.inn.clone(),
                address: self.rules.lender.address.clone(),
            },
            offer: etr_documents::Offer {
                amount: text(offer.amount.amount),
                currency: offer.amount.currency.code().to_owned(),
                term_days,
                rate_text,
                psk_percent: format!("{:.3}", offer.psk_percent),
                psk_money: text(offer.psk_money),
                total_to_repay: text(total),
            },
            schedule: offer
                .schedule
                .iter()
                .map(|i| etr_documents::ScheduleRow {
                    number: i.number,
                    date: i.date.to_string(),
                    payment: text(i.payment),
                    principal: text(i.principal),
                    interest: text(i.interest),
                    balance: text(i.balance),
                })
                .collect(),
        };
        let template = etr_documents::LOAN_AGREEMENT;
        let agreements = self.agreements.clone();
        let rendered = tokio::task::spawn_blocking(move || agreements.render(template, &params))
            .await
            .map_err(|e| transient(e.to_string()))?
            .map_err(|e| definite(format!("contract: {e}")))?;
        let key = agreement_key(id, &rendered.sha256);
        let location = self
            .documents
            .put(&key, rendered.pdf)
            .await
            .map_err(|e| transient(format!("document store: {e}")))?;
        Ok(Outcome::Contract(Contract {
            contract_id: derived_id(id, "contract"),
            document_sha256: rendered.sha256,
            location,
            template: template.to_owned(),
        }))
    }

    fn provider(&self, name: &str) -> Result<&Arc<dyn CardProvider>, Failure> {
        self.ports
            .cards
            .get(name)
            .ok_or_else(|| definite(format!("no payment provider `{name}`")))
    }

    async fn bind_card(
        &self,
        client: ClientId,
        application: &Application,
        binding_id: Uuid,
    ) -> Result<Outcome, Failure> {
        let request = application
            .card_request
            .as_ref()
            .filter(|_| application.card_binding == Some(binding_id))
            .ok_or_else(|| definite(format!("card binding {binding_id} is not in progress")))?;
        let provider = self.provider(&request.provider)?;
        let card = CardToBind {
            binding_id,
            client_id: client,
            card_token: request.token.clone(),
        };
        let failed = |reason: String| Outcome::CardBinding {
            binding_id,
            failure: Some(reason),
        };
        if let Err(reason) = answer("card registration", provider.register(&card).await)? {
            return Ok(failed(reason));
        }
        let hold = match answer(
            "verification hold",
            provider
                .hold(&card, Money::new(Decimal::ONE, Currency::Rub))
                .await,
        )? {
            Ok(hold) => hold,
            Err(reason) => return Ok(failed(reason)),
        };
        let confirmed = answer("card confirmation", provider.confirm(&card, &hold).await)?;
        // The verification hold is released whatever the confirmation said (compensation
        // when it failed).
        if let Err(reason) = answer("hold release", provider.release(&card, &hold).await)? {
            tracing::warn!(%binding_id, reason, "verification hold not released");
        }
        if let Err(reason) = confirmed {
            return Ok(failed(reason));
        }
        self.vault.index_card(client, &request.token).await?;
        Ok(Outcome::CardBinding {
            binding_id,
            failure: None,
        })
    }

    async fn payout(
        &self,
        id: Uuid,
        client: ClientId,
        application: &Application,
    ) -> Result<Outcome, Failure> {
        let offer = application
            .chosen()
            .ok_or_else(|| definite("no offer was chosen"))?;
        let card = application
            .card
            .as_ref()
            .ok_or_else(|| definite("no card is bound"))?;
        let provider = self.provider(&card.provider)?;
        let order = PayoutOrder {
            payout_id: derived_id(id, "payout"),
            client_id: client,
            card_token: card.token.clone(),
            amount: offer.amount,
        };
        match answer("payout", provider.payout(&order).await)? {
            Ok(reference) => Ok(Outcome::PaidOut {
                loan_id: derived_id(id, "loan"),
                reference,
            }),
            Err(reason) => Err(definite(reason)),
        }
    }
}
