//! Every event type of the platform through the real registry: Confluent framing, schema id
//! resolvable, decoded back to the same envelope and event.

use etr_infra::avro::EventCodec;
use etr_schemas::samples;

#[tokio::test]
async fn every_event_type_round_trips_through_the_registry() {
    let (pool, database_url) = etr_infra::pg::fresh_database("etr_test_codec")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(etr_infra::registry::serve(pool, listener));

    let codec = EventCodec::new(&url, "etr.events").unwrap();
    let events = samples::every_event();
    // Every schema has at least one sample (some events have several shapes).
    let names: std::collections::BTreeSet<&str> = events.iter().map(|e| e.name()).collect();
    assert_eq!(names.len(), etr_schemas::SCHEMAS.len());
    let http = reqwest::Client::new();
    for (i, event) in events.iter().enumerate() {
        let envelope = samples::envelope_for(event, i as u64);
        let bytes = codec.encode(&envelope, event).await.unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let registered: serde_json::Value = http
            .get(format!("{url}/schemas/ids/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = registered["schema"].as_str().unwrap();
        assert!(
            text.contains(&format!("\"{}\"", event.name())),
            "schema {id} is {}'s",
            event.name()
        );
        let (env2, event2) = codec.decode(&bytes).await.unwrap();
        assert_eq!(env2, envelope);
        assert_eq!(&event2, event);
    }
    // Every subject follows TopicRecordName.
    let subjects: Vec<String> = http
        .get(format!("{url}/subjects"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subjects.len(), names.len());
    assert!(subjects.contains(&"etr.events-etr.wallet.WalletOpened".to_owned()));
    etr_infra::pg::drop_database(&database_url)
        .await
        .expect("dropping the test database");
}
