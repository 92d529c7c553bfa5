// The spending section of Settings in words: this month against the budget, and paid trainings
// month by month. Pure, so it is tested without a window.
import { locale, tn, translate, type Locale } from "../../lib/i18n/index.svelte";
import type { MonthSpending, Spending } from "../../lib/ipc";
import { formatCost } from "../training/training";

/** One month of the table, every cell in words. */
export interface SpendingRow {
  /** `YYYY-MM`, as the core sent it. */
  key: string;
  month: string;
  requests: string;
  confirmed: string;
  billed: string;
}

export interface SpendingText {
  /** What this month has spent or committed, against the budget when one is set. */
  thisMonth: string;
  /** Newest first. */
  rows: SpendingRow[];
}

/** "January 2025" for `2025-01` (months are counted in UTC); anything else as it came. */
export function formatMonth(month: string, target: Locale = locale()): string {
  const match = /^(\d{4})-(\d{2})$/.exec(month);
  if (!match) return month;
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1));
  return new Intl.DateTimeFormat(target, { month: "long", year: "numeric", timeZone: "UTC" }).format(date);
}

/** What fal billed for a month, and for how many of its requests when not for all of them. */
function billedText(month: MonthSpending, target: Locale): string {
  if (month.billed_usd === null) return translate(target, "spending.billedUnknown");
  const billed = formatCost(month.billed_usd, target);
  if (month.billed_requests >= month.requests) return billed;
  return tn("spending.billedPart", month.requests, target, { billed, billedRequests: month.billed_requests });
}

export function spendingText(spending: Spending, target: Locale = locale()): SpendingText {
  const month = formatMonth(spending.this_month, target);
  const spent = formatCost(spending.committed_this_month_usd, target);
  const budget = spending.monthly_budget_usd;
  const count = new Intl.NumberFormat(target);
  return {
    thisMonth:
      budget === null
        ? translate(target, "spending.spentIn", { month, spent })
        : translate(target, "spending.spentInBudget", { month, spent, budget: formatCost(budget, target) }),
    rows: spending.months.map((row) => ({
      key: row.month,
      month: formatMonth(row.month, target),
      requests: count.format(row.requests),
      confirmed: formatCost(row.confirmed_usd, target),
      billed: billedText(row, target),
    })),
  };
}
