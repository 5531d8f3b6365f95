//! The serving roles of the command line: which of the platform's roles (wired by
//! `etr_platform`) each subcommand runs in this process, and what it prints.

use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_platform::{
    broker, command_app, database, dev_token, own_registry, relay, start_payment_processor,
    start_projectors, start_query_api, start_registry, start_relay, Restart,
};
use etr_query_api::auth::Role;
use etr_sagas::simulators::PaymentProviderSimulator;
use std::sync::Arc;
use tokio::sync::Notify;

/// Starts what `up` and `command-api` share; returns when the API stops.
async fn serve(
    settings: Settings,
    with_registry: bool,
    with_relay: bool,
    demo: Option<bool>,
) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    broker(&settings).await?;
    if with_registry {
        start_registry(&settings, pool.clone()).await?;
    }
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    let committed = Arc::new(Notify::new());
    if with_relay {
        let relay = relay(&settings, &pool, &codec, committed.clone()).await?;
        start_relay(relay, Restart::Supervised);
        // The same process that publishes also projects and answers queries (one machine
        // runs everything).
        start_query_api(&settings, pool.clone()).await?;
        start_projectors(&settings, &pool, Restart::Supervised)?;
        // Scheduled balance reports read the read models this process keeps.
        etr_platform::reports::start_report_scheduler(&pool, Restart::Supervised)?;
        // So do the merchants' daily registries of paid orders.
        etr_platform::reports::start_registry_job(&pool, Restart::Supervised)?;
        // And the credit-history uploads the records of the credit-history builder.
        etr_platform::bki::start_daily_job(&pool, Restart::Supervised)?;
    }
    let app = command_app(&settings, &pool, committed).await?;
    // Every process that decides commands also runs the payment processor; its instances
    // are shared through Postgres (a due payment is taken by one executor at a time).
    start_payment_processor(
        &settings,
        &pool,
        app.clone(),
        Arc::new(PaymentProviderSimulator::default()),
        etr_platform::payment_policy(),
        Restart::Supervised,
    )?;
    // And the loan conveyor, against the simulators of its external systems.
    etr_platform::lending::start_conveyor(
        &settings,
        &pool,
        app.clone(),
        etr_platform::lending::simulated_lending_ports(&pool),
        Restart::Supervised,
    )?;
    let router = etr_platform::command_router(&settings, &pool, app).await?;
    let listener = etr_platform::bind("the command API", &settings.command_api_addr).await?;
    tracing::info!(addr = %settings.command_api_addr, "command API listening");
    let server =
        tokio::spawn(async move { etr_platform::serve_with_peers(listener, router).await });
    if let Some(exit_after) = demo {
        crate::demo::run(&settings, &codec).await?;
        if exit_after {
            return Ok(());
        }
    }
    println!("ETR is up: command API http://{} (OpenAPI /openapi.json, reference /docs), GraphQL http://{}/graphql (GraphiQL at /), registry {}, topic {} — Ctrl-C stops it",
        settings.command_api_addr, settings.query_api_addr, settings.schema_registry_url, settings.topic);
    if settings.jwt_secret == etr_infra::config::DEV_JWT_SECRET {
        println!("Development tokens (ETR_JWT_SECRET is the built-in development secret):");
        for (role, sub) in [
            (Role::Operator, "dev-operator"),
            (Role::Auditor, "dev-auditor"),
            (Role::Partner, "dev-partner"),
        ] {
            println!(
                "  {:<9} Bearer {}",
                format!("{role:?}"),
                dev_token(&settings, sub, role)?
            );
        }
        println!("  a client: etr token --role client --sub <client id>");
    }
    tokio::select! {
        r = server => { r??; }
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); }
    }
    Ok(())
}

pub async fn up(settings: Settings, demo: bool, demo_only: bool) -> anyhow::Result<()> {
    let demo = if demo || demo_only {
        Some(demo_only)
    } else {
        None
    };
    let registry = own_registry(&settings);
    serve(settings, registry, true, demo).await
}

pub async fn command_api(settings: Settings, with_relay: bool) -> anyhow::Result<()> {
    serve(settings, false, with_relay, None).await
}

pub async fn relay_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    broker(&settings).await?;
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    relay(&settings, &pool, &codec, Arc::new(Notify::new()))
        .await?
        .run()
        .await?;
    Ok(())
}

pub async fn projector_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    broker(&settings).await?;
    start_projectors(&settings, &pool, Restart::Supervised)?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}

pub async fn query_api_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    start_query_api(&settings, pool).await?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}

pub async fn registry_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    start_registry(&settings, pool).await?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
