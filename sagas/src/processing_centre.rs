//! The processing centre's simulator (e-wallet spec §1.3): a deterministic catalogue of
//! dictionaries — mobile operators, utilities and internet providers, a card top-up,
//! transfers; four commission profiles; the menu with its three roots; RUB / USD / EUR rates;
//! map points in Moscow; capacity ranges of +7 9xx numbers; the default and two service
//! receipt templates — in the import format ([`CATALOGUE`], `sagas/data/processing_centre.json`,
//! described in `docs/dictionaries.md`). The default run synchronises from it.

use etr_domain::dictionaries::{Document, ProcessingCentre};
use etr_domain::ports::BoxFuture;

/// The simulator's dictionaries: one JSON document of the import format.
pub const CATALOGUE: &str = include_str!("../data/processing_centre.json");

/// Answers every sync with the same document ([`CATALOGUE`] unless another is given), or
/// never answers when made unavailable.
#[derive(Debug, Clone)]
pub struct ProcessingCentreSimulator {
    document: String,
    unavailable: Option<String>,
}

impl Default for ProcessingCentreSimulator {
    fn default() -> Self {
        ProcessingCentreSimulator::with_document(CATALOGUE)
    }
}

impl ProcessingCentreSimulator {
    /// A processing centre answering with `json`, a document of the import format.
    pub fn with_document(json: impl Into<String>) -> ProcessingCentreSimulator {
        ProcessingCentreSimulator {
            document: json.into(),
            unavailable: None,
        }
    }

    /// A processing centre that cannot be reached, for `reason`.
    pub fn unavailable(reason: impl Into<String>) -> ProcessingCentreSimulator {
        ProcessingCentreSimulator {
            document: String::new(),
            unavailable: Some(reason.into()),
        }
    }
}

impl ProcessingCentre for ProcessingCentreSimulator {
    fn dictionaries(&self) -> BoxFuture<'_, Result<Document, String>> {
        Box::pin(async move {
            if let Some(reason) = &self.unavailable {
                return Err(reason.clone());
            }
            serde_json::from_str(&self.document)
                .map_err(|e| format!("the answer is not a dictionaries document: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etr_domain::dictionaries::{
        Dictionaries, OperationType, QuoteRequest, ServiceId, SourceId,
    };
    use etr_domain::identity::PhoneE164;
    use etr_domain::Money;

    #[tokio::test]
    async fn the_simulators_catalogue_is_accepted_and_quotes_exact_commissions() {
        let doc = ProcessingCentreSimulator::default()
            .dictionaries()
            .await
            .expect("the catalogue is a document");
        let d = Dictionaries::parse(&doc).expect("the catalogue keeps every rule");
        let counts = d.counts();
        assert_eq!(
            (
                counts.services,
                counts.commission_profiles,
                counts.menu_items,
                counts.phone_ranges
            ),
            (11, 4, 17, 7)
        );
        assert_eq!(d.catalogue.menu.roots.len(), 3);
        let quote = |service: &str, amount: &str, source: &str| {
            d.catalogue
                .quote(&QuoteRequest {
                    operation: OperationType::Payment,
                    service: &ServiceId::parse(service).unwrap(),
                    menu_item: None,
                    amount: Money::parse_positive(amount, "RUB").unwrap(),
                    source: &SourceId::parse(source).unwrap(),
                })
                .unwrap()
        };
        // Electricity from the wallet: 1 % of 2,500.50 = 25.005 → 25.00 (half to even).
        let q = quote("mosenergosbyt", "2500.50", "wallet");
        assert_eq!(
            (q.commission.amount.to_string(), q.total.amount.to_string()),
            ("25.00".into(), "2525.50".into())
        );
        // From a card: 15.00 + 1.2 % of 2,500.50 = 45.006 → 45.01.
        let q = quote("mosenergosbyt", "2500.50", "card");
        assert_eq!(q.commission.amount.to_string(), "45.01");
        let phone = PhoneE164::parse("+79161234567").unwrap();
        assert_eq!(d.phone_ranges.lookup(&phone).unwrap().operator, "МТС");
    }

    #[tokio::test]
    async fn an_unavailable_centre_answers_its_reason() {
        let centre = ProcessingCentreSimulator::unavailable("gateway timeout");
        assert_eq!(centre.dictionaries().await.unwrap_err(), "gateway timeout");
        let broken = ProcessingCentreSimulator::with_document("{}");
        assert!(broken.dictionaries().await.is_err());
    }
}
