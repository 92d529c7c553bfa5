//! What a paid run costs and what the month has spent: the trainer's live price from fal's
//! pricing API (cached for an hour; the built-in table when it cannot be had), the spending
//! ledger, and the monthly budget a paid start must fit in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use library::MonthSpending;
use serde::Serialize;
use ts_rs::TS;

use crate::{Error, Result, Studio};

/// How long a price read from fal is trusted.
const PRICE_LIFETIME: Duration = Duration::from_secs(3600);
/// A plan is shown while the creator waits: one quick try, then the built-in table.
const PRICE_TRIES: fal::RetryPolicy = fal::RetryPolicy {
    max_retries: 1,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_millis(200),
};

/// Prices read from fal, by endpoint.
#[derive(Default)]
pub(crate) struct PriceCache(Mutex<HashMap<String, (DateTime<Utc>, fal::Price)>>);

impl PriceCache {
    /// The price read less than [`PRICE_LIFETIME`] before `now`, on the studio's clock.
    fn get(&self, endpoint: &str, now: DateTime<Utc>) -> Option<fal::Price> {
        let prices = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        prices
            .get(endpoint)
            .filter(|(read_at, _)| (now - *read_at).to_std().unwrap_or_default() < PRICE_LIFETIME)
            .map(|(_, price)| price.clone())
    }

    fn put(&self, price: fal::Price, now: DateTime<Utc>) {
        let mut prices = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        prices.insert(price.endpoint_id.clone(), (now, price));
    }
}

/// Where a cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PriceSource {
    /// fal's pricing API, for this account.
    Fal,
    /// The built-in table (no key, fal unreachable, or a billing unit the app cannot count).
    Static,
    /// Test mode: nothing is paid.
    None,
}

impl PriceSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Fal => "fal",
            Self::Static => "static",
            Self::None => "none",
        }
    }
}

/// The spending ledger as Settings and `avatar-cli spend` show it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Spending {
    /// Paid requests by month, newest first.
    pub months: Vec<MonthSpending>,
    /// `YYYY-MM` of today, in UTC.
    pub this_month: String,
    /// This month's paid requests and the paid starts not sent yet.
    pub committed_this_month_usd: f64,
    pub monthly_budget_usd: Option<f64>,
}

pub(crate) fn month_of(time: DateTime<Utc>) -> String {
    time.format("%Y-%m").to_string()
}

pub(crate) fn dollars(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

impl Studio {
    /// A run's cost: fal's live price per step for the trainer when it can be read, else the
    /// built-in estimate.
    pub(crate) async fn training_cost(
        &self,
        endpoint: &str,
        steps: u32,
        static_cost: f64,
    ) -> (f64, PriceSource) {
        if self.config().test_mode {
            return (0.0, PriceSource::None);
        }
        let price = match self.prices.get(endpoint, self.clock.now()) {
            Some(price) => Some(price),
            None => self.read_price(endpoint).await,
        };
        match price {
            // Only a per-step price can be counted for a training; any other unit (a GPU
            // second, a run of unknown length) falls back to the table.
            Some(price)
                if price.currency == "USD" && price.unit.to_lowercase().contains("step") =>
            {
                (
                    dollars(price.unit_price * f64::from(steps)),
                    PriceSource::Fal,
                )
            }
            _ => (static_cost, PriceSource::Static),
        }
    }

    /// A sample pack's cost: fal's live price per megapixel (images billed by rounding up to
    /// whole megapixels, fal-protocol.md §4.4) or per image when it can be read, else the
    /// documented $0.035 per megapixel.
    pub(crate) async fn generation_cost(
        &self,
        endpoint: &str,
        images: u32,
        megapixels_per_image: f64,
    ) -> (f64, PriceSource) {
        /// fal's documented price for `fal-ai/flux-lora`.
        const STATIC_PER_MEGAPIXEL: f64 = 0.035;
        if self.config().test_mode {
            return (0.0, PriceSource::None);
        }
        // UNCONFIRMED whether a megapixel is 10^6 or 2^20 pixels; 10^6 bills more, so it is the
        // one the estimate uses.
        let billed_megapixels = megapixels_per_image.ceil();
        let price = match self.prices.get(endpoint, self.clock.now()) {
            Some(price) => Some(price),
            None => self.read_price(endpoint).await,
        };
        let per_image = match price {
            Some(price)
                if price.currency == "USD" && price.unit.to_lowercase().contains("megapixel") =>
            {
                Some(price.unit_price * billed_megapixels)
            }
            Some(price)
                if price.currency == "USD" && price.unit.to_lowercase().contains("image") =>
            {
                Some(price.unit_price)
            }
            _ => None,
        };
        match per_image {
            Some(per_image) => (dollars(per_image * f64::from(images)), PriceSource::Fal),
            None => (
                dollars(STATIC_PER_MEGAPIXEL * billed_megapixels * f64::from(images)),
                PriceSource::Static,
            ),
        }
    }

    async fn read_price(&self, endpoint: &str) -> Option<fal::Price> {
        let client = self.fal_client_retrying(PRICE_TRIES).ok()?;
        let price = client
            .prices(&[endpoint])
            .await
            .ok()?
            .into_iter()
            .find(|price| price.endpoint_id == endpoint)?;
        self.prices.put(price.clone(), self.clock.now());
        Some(price)
    }

    /// The spending ledger and the budget.
    pub fn spending(&self) -> Result<Spending> {
        let this_month = month_of(self.clock.now());
        Ok(Spending {
            months: self.library.monthly_spending()?,
            committed_this_month_usd: dollars(self.library.committed_in_month(&this_month)?),
            this_month,
            monthly_budget_usd: self.config().monthly_budget_usd,
        })
    }

    /// Why a paid start was refused by the monthly budget, in words.
    pub(crate) fn over_budget(&self, cost_usd: f64, committed_usd: f64, budget: f64) -> Error {
        let this_month = month_of(self.clock.now());
        Error::Conflict(format!(
            "This training costs about ${cost_usd:.2}, and ${committed_usd:.2} is already spent or committed in {this_month}: together they pass the monthly budget of ${budget:.2} (AVATAR_MONTHLY_BUDGET_USD). Raise the budget in Settings or wait for next month."
        ))
    }
}
