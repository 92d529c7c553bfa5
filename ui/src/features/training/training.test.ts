import { describe, expect, it } from "vitest";

import { tn, translate } from "../../lib/i18n/index.svelte";
import type { JobState, JobView, TrainingPlan } from "../../lib/ipc";
import {
  confirmText,
  estimateText,
  failureText,
  formatCost,
  formatDuration,
  formatMinutes,
  formatPercent,
  isActive,
  jobCostText,
  isPreset,
  newest,
  parseLearningRate,
  parseSteps,
  percent,
  queuePlace,
  requestOf,
  stepText,
  stateChanged,
  viewOf,
} from "./training";

// The ranges the backend sends in AppInfo.training (fal's documented ranges).
const RANGES = { min_steps: 1, max_steps: 10_000, min_learning_rate: 0.000_001, max_learning_rate: 0.001 };

const job = (overrides: Partial<JobView> = {}): JobView => ({
  id: "job-1",
  avatar_id: "avatar-1",
  trainer: "fal-ai/flux-lora-portrait-trainer",
  training_type: "portrait",
  preset: "balanced",
  test_mode: false,
  state: "running",
  request_id: null,
  progress: 40,
  queue_position: null,
  step: null,
  last_log: null,
  failure: null,
  model_path: null,
  cancel_requested: false,
  created_at: "2025-01-01T10:00:00Z",
  updated_at: "2025-01-01T10:05:00Z",
  submitted_at: null,
  finished_at: null,
  confirmed_cost_usd: 2.4,
  price_source: "static",
  paid_request: true,
  billed_cost_usd: null,
  ...overrides,
});

const plan = (overrides: Partial<TrainingPlan> = {}): TrainingPlan => ({
  avatar_id: "avatar-1",
  avatar_name: "Anna",
  training_type: "portrait",
  preset: "balanced",
  trainer: "fal-ai/flux-lora-portrait-trainer",
  steps: 1000,
  learning_rate: 0.0002,
  min_minutes: 5,
  max_minutes: 15,
  cost_usd: 2.4,
  test_mode: false,
  photos: 12,
  storage: "s3",
  storage_notice: null,
  price_source: "static",
  price_unverified: false,
  cost_usd_fal: null,
  cost_usd_table: null,
  spent_this_month_usd: 0,
  monthly_budget_usd: null,
  ...overrides,
});

// Intl puts no-break spaces into Russian numbers; compare with plain ones.
const plain = (text: string) => text.replace(/[\u00a0\u202f]/g, " ");

describe("training views", () => {
  it("map every job state to what the panel shows", () => {
    const expected: Record<JobState, string> = {
      preparing: "active",
      submitting: "active",
      queued: "active",
      running: "active",
      downloading: "active",
      completed: "completed",
      failed: "failed",
      cancelled: "cancelled",
    };
    for (const [state, view] of Object.entries(expected) as [JobState, string][]) {
      expect(viewOf(job({ state }))).toBe(view);
      expect(isActive(state)).toBe(view === "active");
    }
    expect(viewOf(null)).toBe("setup");
  });

  it("show the choice again to retrain after an ended run, never over a running one", () => {
    expect(viewOf(job({ state: "completed" }), true)).toBe("setup");
    expect(viewOf(job({ state: "failed" }), true)).toBe("setup");
    expect(viewOf(job({ state: "running" }), true)).toBe("active");
  });
});

describe("job updates", () => {
  const current = job();

  it("ignore other avatars' jobs", () => {
    expect(newest(current, job({ avatar_id: "avatar-2", id: "other" }), "avatar-1")).toBe(current);
    expect(newest(null, job({ avatar_id: "avatar-2" }), "avatar-1")).toBeNull();
  });

  it("take newer states of the same job and drop stale ones", () => {
    const later = job({ progress: 60, updated_at: "2025-01-01T10:06:00Z" });
    expect(newest(current, later, "avatar-1")).toBe(later);
    expect(newest(later, current, "avatar-1")).toBe(later);
    const ended = job({ state: "completed", progress: 100, updated_at: "2025-01-01T10:06:00Z" });
    // A final state is not undone by an update that arrives late with the same time stamp.
    expect(newest(ended, job({ updated_at: "2025-01-01T10:06:00Z" }), "avatar-1")).toBe(ended);
  });

  it("switch to a newer job and keep the newer one when an older one reports", () => {
    const retrained = job({ id: "job-2", state: "preparing", created_at: "2025-01-02T09:00:00Z", updated_at: "2025-01-02T09:00:00Z" });
    expect(newest(current, retrained, "avatar-1")).toBe(retrained);
    expect(newest(retrained, current, "avatar-1")).toBe(retrained);
  });

  it("notice changes of state but not of progress", () => {
    expect(stateChanged(current, job({ progress: 80 }))).toBe(false);
    expect(stateChanged(current, job({ state: "downloading" }))).toBe(true);
    expect(stateChanged(current, job({ id: "job-2" }))).toBe(true);
    expect(stateChanged(null, current)).toBe(true);
    expect(stateChanged(current, null)).toBe(false);
  });
});

describe("progress", () => {
  it("is a whole percentage within 0–100", () => {
    expect(percent(42.4)).toBe(42);
    expect(percent(-3)).toBe(0);
    expect(percent(140)).toBe(100);
    expect(percent(Number.NaN)).toBe(0);
  });

  it("is written the way each language writes percentages", () => {
    expect(formatPercent(65, "en")).toBe("65%");
    expect(plain(formatPercent(65, "ru"))).toBe("65 %");
  });

  it("counts the queue from 1 although fal counts from 0", () => {
    expect(queuePlace(job({ state: "queued", queue_position: 0 }))).toBe(1);
    expect(queuePlace(job({ state: "queued", queue_position: 4 }))).toBe(5);
    expect(queuePlace(job({ state: "queued", queue_position: null }))).toBeNull();
    expect(queuePlace(job({ state: "running", queue_position: 2 }))).toBeNull();
    expect(translate("en", "training.queue", { position: 5 })).toBe("Position 5 in fal's queue");
  });

  it("says how long an ended run took", () => {
    const ended = (finished_at: string) => job({ state: "completed", created_at: "2025-01-01T10:00:00Z", finished_at });
    expect(formatDuration(ended("2025-01-01T10:21:10Z"), "ru")).toBe("Заняло 21 минуту");
    expect(formatDuration(ended("2025-01-01T10:03:00Z"), "ru")).toBe("Заняло 3 минуты");
    expect(formatDuration(ended("2025-01-01T10:12:00Z"), "ru")).toBe("Заняло 12 минут");
    expect(formatDuration(ended("2025-01-01T10:01:00Z"), "en")).toBe("Took 1 minute");
    expect(formatDuration(ended("2025-01-01T10:00:30Z"), "en")).toBe("Took less than a minute");
    expect(formatDuration(job())).toBeNull();
  });

  it("shows a paid job's confirmed cost and, once known, what fal billed", () => {
    expect(jobCostText(job(), "en")).toBe("Confirmed cost $2.40");
    expect(jobCostText(job({ billed_cost_usd: 2.31 }), "en")).toBe("Confirmed cost $2.40, billed $2.31");
    expect(plain(jobCostText(job({ billed_cost_usd: 2.31 }), "ru") ?? "")).toBe("Подтверждённая стоимость 2,40 $, fal списал 2,31 $");
    expect(jobCostText(job({ paid_request: false }), "en")).toBeNull();
    expect(jobCostText(job({ test_mode: true, confirmed_cost_usd: 0 }), "en")).toBeNull();
  });
});

describe("estimate", () => {
  it("lists steps, learning rate, photos, time and cost in English", () => {
    expect(estimateText(plan(), "en")).toEqual({
      steps: "1000 steps",
      learningRate: "learning rate 0.0002",
      photos: "12 photos",
      time: "Expected time: 5–15 minutes",
      cost: "Expected cost: $2.40",
      priceSource: "Estimate from fal's published prices",
      note: "Portrait: about $0.0024 per step, at least 1000 steps billed (a third-party figure fal has not confirmed). Times are the guide's.",
      budget: null,
      budgetWarning: null,
      storageNotice: null,
    });
  });

  it("says when the cost is fal's own price for the account, without the built-in assumptions", () => {
    const text = estimateText(plan({ price_source: "fal", cost_usd: 2.1 }), "en");
    expect(text.cost).toBe("Expected cost: $2.10");
    expect(text.priceSource).toBe("At fal's current price for your account");
    expect(text.note).toBeNull();
    expect(estimateText(plan({ price_source: "fal" }), "ru").priceSource).toBe("По текущей цене fal для вашего аккаунта");
  });

  it("shows both figures when fal's price and the published table disagree", () => {
    const unverified = plan({ price_source: "fal", cost_usd: 20, price_unverified: true, cost_usd_fal: 20, cost_usd_table: 2.4 });
    const english = estimateText(unverified, "en").priceSource ?? "";
    expect(english).toContain("unverified");
    expect(english).toContain("$20.00");
    expect(english).toContain("$2.40");
    const russian = plain(estimateText(unverified, "ru").priceSource ?? "");
    expect(russian).toContain("не подтверждена");
    expect(russian).toContain("20,00");
    expect(russian).toContain("2,40");
    expect(estimateText(plan(), "ru").priceSource).toBe("Оценка по опубликованным ценам fal");
  });

  it("shows this month's spending against a budget and warns before a start the budget refuses", () => {
    const within = estimateText(plan({ spent_this_month_usd: 10.1, cost_usd: 4.9, monthly_budget_usd: 15 }), "en");
    expect(within.budget).toBe("This month: $10.10 of $15.00 budget");
    expect(within.budgetWarning).toBeNull();
    const over = estimateText(plan({ spent_this_month_usd: 12, cost_usd: 4.5, monthly_budget_usd: 15 }), "en");
    expect(over.budgetWarning).toBe(
      "With this training, this month's spending would come to $16.50, more than the $15.00 budget, so the start will be refused. Raise the budget in Settings or wait until next month.",
    );
    const overRu = estimateText(plan({ spent_this_month_usd: 12, cost_usd: 4.5, monthly_budget_usd: 15 }), "ru");
    expect(plain(overRu.budget ?? "")).toBe("В этом месяце: 12,00 $ из бюджета 15,00 $");
    expect(plain(overRu.budgetWarning ?? "")).toMatch(/^С этим обучением расходы за месяц составят 16,50 \$ — больше бюджета 15,00 \$/);
    expect(estimateText(plan({ spent_this_month_usd: 12 }), "en").budget).toBeNull();
  });

  it("tells why the training set goes through fal storage although S3 is set up", () => {
    const text = estimateText(plan({ storage: "fal", storage_notice: "s3_not_public" }), "en");
    expect(text.storageNotice).toBe(
      "fal cannot reach your S3 (it is not on the internet), so the training set is sent through fal storage. Your S3 keeps the library's photo copies.",
    );
    expect(estimateText(plan({ storage: "fal", storage_notice: "s3_not_public" }), "ru").storageNotice).toMatch(
      /^fal не может обратиться к вашему S3/,
    );
    expect(estimateText(plan({ storage_notice: "some_new_code" }), "en").storageNotice).toBe("some_new_code");
  });

  it("lists them in Russian with Russian numbers and plurals", () => {
    const text = estimateText(plan({ steps: 2500, photos: 11, min_minutes: 3, max_minutes: 4 }), "ru");
    expect(text.steps).toBe("2500 шагов");
    expect(text.learningRate).toBe("скорость обучения 0,0002");
    expect(text.photos).toBe("11 фотографий");
    expect(text.time).toBe("Ожидаемое время: 3–4 минуты");
    expect(plain(text.cost)).toBe("Ожидаемая стоимость: 2,40 $");
  });

  it("says test mode costs nothing and leaves out the cost assumptions", () => {
    const text = estimateText(
      plan({ test_mode: true, cost_usd: 0, price_source: "none", storage: "none", monthly_budget_usd: 1 }),
      "en",
    );
    expect(text.cost).toBe("Test mode — no cost");
    expect(text.priceSource).toBeNull();
    expect(text.note).toBeNull();
    expect(text.budget).toBeNull();
    expect(text.budgetWarning).toBeNull();
    expect(estimateText(plan({ test_mode: true }), "ru").cost).toBe("Тестовый режим — бесплатно");
  });

  it("asks before a paid start with the cost and time, and says a test run is free", () => {
    expect(confirmText(plan(), "en")).toBe(
      "Start a paid training on fal.ai? It is expected to cost $2.40 and take 5–15 minutes. Your photos will be uploaded for training.",
    );
    expect(plain(confirmText(plan({ min_minutes: 20, max_minutes: 45, cost_usd: 2 }), "ru"))).toBe(
      "Начать платное обучение на fal.ai? Ожидаемая стоимость — 2,00 $, время — 20–45 минут. Фотографии будут загружены для обучения.",
    );
    expect(confirmText(plan({ test_mode: true }), "en")).toMatch(/^Start a simulated training\?/);
  });

  it("has no learning rate for the style trainer", () => {
    expect(estimateText(plan({ training_type: "style", learning_rate: null }), "en").learningRate).toBeNull();
  });

  it("writes money and minute ranges per language", () => {
    expect(formatCost(2, "en")).toBe("$2.00");
    expect(formatCost(0.0024 * 2500, "en")).toBe("$6.00");
    expect(formatMinutes(5, 5, "en")).toBe("5 minutes");
    expect(formatMinutes(1, 1, "en")).toBe("1 minute");
    expect(formatMinutes(20, 45, "en")).toBe("20–45 minutes");
    expect(formatMinutes(15, 21, "ru")).toBe("15–21 минута");
    expect(formatMinutes(10, 20, "ru")).toBe("10–20 минут");
    expect(formatMinutes(2, 2, "ru")).toBe("2 минуты");
  });
});

describe("plural strings", () => {
  it("count steps, photos and missing photos in Russian", () => {
    expect(tn("training.steps", 1, "ru")).toBe("1 шаг");
    expect(tn("training.steps", 200, "ru")).toBe("200 шагов");
    expect(tn("training.steps", 22, "ru")).toBe("22 шага");
    expect(tn("training.photos", 21, "ru")).toBe("21 фотография");
    expect(tn("training.photos", 14, "ru")).toBe("14 фотографий");
    expect(tn("training.needPhotos", 1, "ru")).toBe("Добавьте ещё 1 фотографию, чтобы начать обучение.");
    expect(tn("training.needPhotos", 3, "ru")).toBe("Добавьте ещё 3 фотографии, чтобы начать обучение.");
    expect(tn("training.needPhotos", 5, "ru")).toBe("Добавьте ещё 5 фотографий, чтобы начать обучение.");
  });

  it("count them in English", () => {
    expect(tn("training.steps", 1, "en")).toBe("1 step");
    expect(tn("training.photos", 10, "en")).toBe("10 photos");
    expect(tn("training.needPhotos", 1, "en")).toBe("Add 1 more photo to start training.");
    expect(tn("training.needPhotos", 4, "en")).toBe("Add 4 more photos to start training.");
  });
});

describe("advanced values", () => {
  it("keep the preset's values when left empty", () => {
    expect(parseSteps("  ", RANGES)).toEqual({ value: null, problem: null });
    expect(requestOf({ preset: "fast", steps: "", learningRate: "" }, "portrait", RANGES)).toEqual({
      preset: "fast",
      steps: null,
      learningRate: null,
    });
  });

  it("accept whole steps within fal's range", () => {
    expect(parseSteps("1500", RANGES)).toEqual({ value: 1500, problem: null });
    expect(parseSteps("10000", RANGES).value).toBe(10_000);
    expect(parseSteps("0", RANGES).problem).toBe("out_of_range");
    expect(parseSteps("10001", RANGES).problem).toBe("out_of_range");
    expect(parseSteps("12.5", RANGES).problem).toBe("not_whole");
    expect(parseSteps("many", RANGES).problem).toBe("not_a_number");
    expect(parseSteps("-5", RANGES).problem).toBe("not_a_number");
  });

  it("accept a learning rate with a point, a comma or an exponent", () => {
    expect(parseLearningRate("0.0002", RANGES).value).toBe(0.0002);
    expect(parseLearningRate("0,0002", RANGES).value).toBe(0.0002);
    expect(parseLearningRate("2e-4", RANGES).value).toBe(0.0002);
    expect(parseLearningRate("0.01", RANGES).problem).toBe("out_of_range");
    expect(parseLearningRate("0", RANGES).problem).toBe("out_of_range");
    expect(parseLearningRate("fast", RANGES).problem).toBe("not_a_number");
  });

  it("send no learning rate for the style trainer and nothing while a field is wrong", () => {
    expect(requestOf({ preset: "quality", steps: "800", learningRate: "0.0001" }, "style", RANGES)).toEqual({
      preset: "quality",
      steps: 800,
      learningRate: null,
    });
    expect(requestOf({ preset: "quality", steps: "800", learningRate: "0.0001" }, "portrait", RANGES)).toEqual({
      preset: "quality",
      steps: 800,
      learningRate: 0.0001,
    });
    expect(requestOf({ preset: "fast", steps: "abc", learningRate: "" }, "portrait", RANGES)).toBeNull();
    expect(requestOf({ preset: "fast", steps: "", learningRate: "1" }, "portrait", RANGES)).toBeNull();
  });

  it("recognise the presets a stored job may name", () => {
    expect(isPreset("balanced")).toBe(true);
    expect(isPreset("turbo")).toBe(false);
  });
});

describe("job steps and failures", () => {
  it("word a step's code and parameters in either language, marking test runs", () => {
    const training = job({ state: "running", step: { code: "training", done: 75, total: 200 } });
    expect(stepText(training, "en")).toBe("Training: step 75 of 200");
    expect(stepText(training, "ru")).toBe("Обучение: шаг 75 из 200");
    expect(stepText({ ...training, test_mode: true }, "ru")).toBe("Обучение: шаг 75 из 200 (тестовый режим)");
    const queued = job({ state: "queued", step: { code: "queued", place: 3 } });
    expect(stepText(queued, "ru")).toBe("Ожидание в очереди fal (место 3)");
    const uploading = job({ step: { code: "uploading", megabytes: 12.5, store: "fal" } });
    expect(stepText(uploading, "ru")).toBe("Загружаем обучающий набор (12,5 МБ) в хранилище fal");
    expect(stepText(job({ step: null, state: "queued" }), "en")).toBe("In the queue");
  });

  it("word a failure by its code, with its parameters and technical detail", () => {
    expect(failureText({ code: "never_received", minutes: 10 }, "ru")).toContain("через 10 мин.");
    const gaveUp = { code: "transfer_gave_up", transfer: "download", tries: 3, detail: "stalled" } as const;
    expect(failureText(gaveUp, "en")).toBe("The model could not be downloaded after 3 tries: stalled");
    expect(failureText(gaveUp, "ru")).toBe("Модель не удалось скачать (попыток: 3): stalled");
    expect(failureText({ code: "fal_failed", kind: null, detail: "Not enough faces" }, "ru")).toBe(
      "fal сообщил об ошибке: Not enough faces",
    );
    expect(failureText(null, "en")).toBe("No reason was given.");
  });
});
