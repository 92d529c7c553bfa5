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

use crate::{Error, InForce, Result, Studio};

/// How long a price read from fal is trusted.
const PRICE_LIFETIME: Duration = Duration::from_secs(3600);
/// A plan is shown while the creator waits: one quick try, then the built-in table.
const PRICE_TRIES: fal::RetryPolicy = fal::RetryPolicy {
    max_retries: 1,
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_millis(200),
};

/// What fal said, each kept with when it was read: prices by endpoint, and fal's estimates of a
/// run by endpoint and step count.
#[derive(Default)]
pub(crate) struct PriceCache {
    prices: Timed<String, fal::Price>,
    /// By endpoint and step count.
    estimates: Timed<(String, u32), f64>,
}

/// Values by key, each with when it was read.
type Timed<K, V> = Mutex<HashMap<K, (DateTime<Utc>, V)>>;

/// The value read less than [`PRICE_LIFETIME`] before `now`, on the studio's clock.
fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &Timed<K, V>,
    key: &K,
    now: DateTime<Utc>,
) -> Option<V> {
    let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.get(key)
        .filter(|(read_at, _)| (now - *read_at).to_std().unwrap_or_default() < PRICE_LIFETIME)
        .map(|(_, value)| value.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Timed<K, V>, key: K, value: V, now: DateTime<Utc>) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.insert(key, (now, value));
}

/// How far fal's figure and the documented table may differ before the price is called
/// unverified: the pricing API's units are not documented, and a public snapshot of it gives
/// the trainers ten times their model pages' price (fal-protocol.md §8.5).
const MAX_PRICE_RATIO: f64 = 3.0;
/// A pack's live price below the documented one divided by this is not used.
const MIN_PRICE_SHARE: f64 = 4.0;

/// A run's cost as a plan shows it and the budget counts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cost {
    /// What the confirmation names and the budget counts: the higher figure when unverified.
    pub usd: f64,
    pub source: PriceSource,
    /// fal's figure and the table's, when they differ by more than [`MAX_PRICE_RATIO`].
    pub unverified: Option<(f64, f64)>,
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
    /// A run's cost: fal's own figure for the trainer when its price is one the app can count
    /// (per step), from fal's estimate endpoint where the key may call it, else its unit price
    /// times the steps; always checked against the documented table. A figure of fal's that is
    /// not a positive number is not used; one that differs from the table by more than
    /// [`MAX_PRICE_RATIO`] either way is shown with the table's as unverified, and the higher
    /// of the two is what the creator confirms and the budget counts.
    pub(crate) async fn training_cost(
        &self,
        in_force: &InForce,
        endpoint: &str,
        steps: u32,
        table_cost: f64,
    ) -> Cost {
        if in_force.config.test_mode {
            return Cost {
                usd: 0.0,
                source: PriceSource::None,
                unverified: None,
            };
        }
        let table = Cost {
            usd: table_cost,
            source: PriceSource::Static,
            unverified: None,
        };
        let price = match fresh(&self.prices.prices, &endpoint.to_string(), self.clock.now()) {
            Some(price) => Some(price),
            None => self.read_price(in_force, endpoint).await,
        };
        // Only a per-step price can be counted for a training; any other unit (a GPU second, a
        // run of unknown length) falls back to the table.
        let Some(price) = price
            .filter(|price| price.currency == "USD" && price.unit.to_lowercase().contains("step"))
        else {
            return table;
        };
        let fal_cost = match self.fal_estimate(in_force, endpoint, steps).await {
            Some(estimate) => estimate,
            None => price.unit_price * f64::from(steps),
        };
        if !(fal_cost.is_finite() && fal_cost > 0.0) {
            return table;
        }
        let fal_cost = dollars(fal_cost);
        let ratio = fal_cost.max(table_cost) / fal_cost.min(table_cost).max(0.01);
        if ratio > MAX_PRICE_RATIO {
            Cost {
                usd: fal_cost.max(table_cost),
                source: PriceSource::Fal,
                unverified: Some((fal_cost, table_cost)),
            }
        } else {
            Cost {
                usd: fal_cost,
                source: PriceSource::Fal,
                unverified: None,
            }
        }
    }

    /// fal's estimate of a run of `steps`, read once an hour per step count; `None` when the
    /// key may not ask or fal cannot answer.
    async fn fal_estimate(&self, in_force: &InForce, endpoint: &str, steps: u32) -> Option<f64> {
        let key = (endpoint.to_string(), steps);
        if let Some(estimate) = fresh(&self.prices.estimates, &key, self.clock.now()) {
            return Some(estimate);
        }
        let client = in_force.fal_client().ok()?.with_retry(PRICE_TRIES);
        let estimate = client
            .estimate_cost(endpoint, f64::from(steps))
            .await
            .ok()?;
        remember(&self.prices.estimates, key, estimate, self.clock.now());
        Some(estimate)
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
        let in_force = self.in_force();
        if in_force.config.test_mode {
            return (0.0, PriceSource::None);
        }
        // UNCONFIRMED whether a megapixel is 10^6 or 2^20 pixels; 10^6 bills more, so it is the
        // one the estimate uses.
        let billed_megapixels = megapixels_per_image.ceil();
        let price = match fresh(&self.prices.prices, &endpoint.to_string(), self.clock.now()) {
            Some(price) => Some(price),
            None => self.read_price(&in_force, endpoint).await,
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
        let table_per_image = STATIC_PER_MEGAPIXEL * billed_megapixels;
        match per_image {
            // A price of 0 or less, not a number, or under a quarter of the documented one is
            // not fal's word on what a pack costs: confirming it would blind the budget.
            Some(per_image)
                if per_image.is_finite() && per_image >= table_per_image / MIN_PRICE_SHARE =>
            {
                (dollars(per_image * f64::from(images)), PriceSource::Fal)
            }
            _ => (
                dollars(table_per_image * f64::from(images)),
                PriceSource::Static,
            ),
        }
    }

    async fn read_price(&self, in_force: &InForce, endpoint: &str) -> Option<fal::Price> {
        let client = in_force.fal_client().ok()?.with_retry(PRICE_TRIES);
        let price = client
            .prices(&[endpoint])
            .await
            .ok()?
            .into_iter()
            .find(|price| price.endpoint_id == endpoint)?;
        remember(
            &self.prices.prices,
            endpoint.to_string(),
            price.clone(),
            self.clock.now(),
        );
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
