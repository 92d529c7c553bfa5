import { describe, expect, it } from "vitest";

import type { MonthSpending, Spending } from "../../lib/ipc";
import { formatMonth, spendingText } from "./spending";

const month = (overrides: Partial<MonthSpending> = {}): MonthSpending => ({
  month: "2025-03",
  confirmed_usd: 7.2,
  billed_usd: 6.95,
  requests: 3,
  billed_requests: 3,
  ...overrides,
});

const spending = (overrides: Partial<Spending> = {}): Spending => ({
  months: [month(), month({ month: "2025-02", confirmed_usd: 2.4, billed_usd: null, requests: 1, billed_requests: 0 })],
  this_month: "2025-03",
  committed_this_month_usd: 9.6,
  monthly_budget_usd: 25.5,
  ...overrides,
});

// Intl puts no-break spaces into Russian numbers; compare with plain ones.
const plain = (text: string) => text.replace(/[\u00a0\u202f]/g, " ");

describe("spending", () => {
  it("names months in each language and leaves anything else as it came", () => {
    expect(formatMonth("2025-01", "en")).toBe("January 2025");
    expect(formatMonth("2024-12", "en")).toBe("December 2024");
    expect(plain(formatMonth("2025-01", "ru"))).toBe("январь 2025 г.");
    expect(formatMonth("soon", "en")).toBe("soon");
  });

  it("says what this month has spent or committed, against the budget when one is set", () => {
    expect(spendingText(spending(), "en").thisMonth).toBe("Spent in March 2025: $9.60 of the $25.50 budget");
    expect(spendingText(spending({ monthly_budget_usd: null }), "en").thisMonth).toBe("Spent in March 2025: $9.60");
    expect(plain(spendingText(spending(), "ru").thisMonth)).toBe("Потрачено за март 2025 г.: 9,60 $ из бюджета 25,50 $");
  });

  it("lists months newest first with requests, confirmed and billed costs", () => {
    expect(spendingText(spending(), "en").rows).toEqual([
      { key: "2025-03", month: "March 2025", requests: "3", confirmed: "$7.20", billed: "$6.95" },
      { key: "2025-02", month: "February 2025", requests: "1", confirmed: "$2.40", billed: "not known yet" },
    ]);
    expect(spendingText(spending({ months: [] }), "en").rows).toEqual([]);
  });

  it("says for how many requests the billed sum is known when not for all", () => {
    const partly = (requests: number, billed_requests: number) =>
      spending({ months: [month({ requests, billed_requests, billed_usd: 4.8 })] });
    expect(spendingText(partly(3, 2), "en").rows[0]?.billed).toBe("$4.80 for 2 of 3 requests");
    expect(plain(spendingText(partly(3, 2), "ru").rows[0]?.billed ?? "")).toBe("4,80 $ за 2 из 3 запросов");
    expect(plain(spendingText(partly(21, 20), "ru").rows[0]?.billed ?? "")).toBe("4,80 $ за 20 из 21 запроса");
    expect(plain(spendingText(spending(), "ru").rows[1]?.billed ?? "")).toBe("пока неизвестно");
  });
});
