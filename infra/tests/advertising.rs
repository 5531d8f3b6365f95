//! Advertising storage (e-wallet spec §6) on the real Postgres server, on a fresh database
//! dropped at its end: the playlist is rebuilt when a banner or campaign changes, and the
//! cursor is shared — four servers with their own pools, as four processes would be, asking
//! at once still serve every banner exactly `weight` times per lap.

use etr_domain::advertising::{
    Banner, BannerId, Campaign, CampaignId, Conditions, Content, Name, Operation, Period, Place,
    PlaceId, Weight,
};
use etr_infra::advertising::Advertising;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use time::macros::datetime;

fn banner(id: &str, weight: i64, conditions: Conditions) -> Banner {
    Banner {
        id: BannerId::parse(id).unwrap(),
        campaign: CampaignId::parse("winter").unwrap(),
        place: PlaceId::parse("content").unwrap(),
        content: Content::parse(&format!("Offer {id}"), "", "/offers", None).unwrap(),
        weight: Weight::parse(weight).unwrap(),
        conditions,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_servers_share_one_cursor_and_serve_each_banner_weight_times_per_lap() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_advertising")
        .await
        .expect("Postgres must be running");
    let ads = Advertising::new(pool.clone());
    let at = datetime!(2026-12-04 12:00 UTC);
    let place = Place::parse("content", "Receipt footer", "web_application").unwrap();
    assert!(ads.create_place(&place, "test").await.unwrap().is_some());
    assert!(ads.create_place(&place, "test").await.unwrap().is_none());
    let campaign = Campaign {
        id: CampaignId::parse("winter").unwrap(),
        name: Name::parse("Winter", "name").unwrap(),
        period: Period::new(datetime!(2026-12-01 00:00 UTC), None).unwrap(),
        active: true,
    };
    ads.create_campaign(&campaign, "test")
        .await
        .unwrap()
        .unwrap();
    let small = Conditions::parse(&[], &[], None, Some("100"), &BTreeMap::new()).unwrap();
    for b in [
        banner("a", 5, Conditions::default()),
        banner("b", 3, Conditions::default()),
        banner("c", 2, Conditions::default()),
        banner("never", 4, small),
    ] {
        ads.create_banner(&b, "test").await.unwrap().unwrap();
    }
    let playlist = ads.playlist("content").await.unwrap().unwrap();
    assert_eq!(playlist.playlist.len(), 14);
    assert_eq!(playlist.position, 0);
    let version = playlist.version;

    // Two laps of the 10 entries that match, asked by four servers at once.
    let op = Operation {
        amount: Some(Decimal::new(50000, 2)),
        ..Operation::default()
    };
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let own = sqlx::PgPool::connect(&url).await.unwrap();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let server = Advertising::new(own);
            let mut ids = Vec::new();
            for _ in 0..5 {
                let b = server
                    .next_banner("content", &op, at)
                    .await
                    .unwrap()
                    .unwrap();
                ids.push(b.id.to_string());
            }
            ids
        }));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        for id in t.await.unwrap() {
            *counts.entry(id).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = [("a", 10), ("b", 6), ("c", 4)]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
    assert_eq!(counts, expected);

    // A banner's change rebuilds the playlist: a new version, the cursor back at 0.
    ads.update_banner(&banner("c", 7, Conditions::default()), "test")
        .await
        .unwrap()
        .unwrap();
    let rebuilt = ads.playlist("content").await.unwrap().unwrap();
    assert_eq!(
        (rebuilt.version, rebuilt.position, rebuilt.playlist.len()),
        (version + 1, 0, 19)
    );
    // An unknown place is refused with its code; a campaign switched off serves nothing.
    let e = ads.next_banner("nowhere", &op, at).await.unwrap_err();
    assert!(
        matches!(&e, etr_infra::Error::Advertising(a) if a.code() == "unknown_place"),
        "{e}"
    );
    let off = Campaign {
        active: false,
        ..campaign
    };
    ads.update_campaign(&off, "test").await.unwrap().unwrap();
    assert_eq!(
        ads.playlist("content")
            .await
            .unwrap()
            .unwrap()
            .playlist
            .len(),
        0
    );
    assert_eq!(ads.next_banner("content", &op, at).await.unwrap(), None);
    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}
