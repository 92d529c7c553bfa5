// Translations: every string the UI shows comes from en.json / ru.json through t().
import en from "./en.json";
import ru from "./ru.json";

export type Locale = "en" | "ru";
export type MessageKey = keyof typeof en;
type Params = Record<string, string | number>;

// `satisfies` makes the type-check fail when a language misses a key English has.
const dictionaries = { en, ru } satisfies Record<Locale, Record<MessageKey, string>>;

export const LOCALES: readonly Locale[] = ["en", "ru"];

/** The first of the system's preferred languages that the app speaks, else English. */
export function systemLocale(languages: readonly string[] = globalThis.navigator?.languages ?? []): Locale {
  for (const language of languages) {
    const base = language.toLowerCase().split("-")[0];
    if (base === "en" || base === "ru") return base;
  }
  return "en";
}

const state = $state({ locale: systemLocale() });

export function locale(): Locale {
  return state.locale;
}

export function setLocale(next: Locale): void {
  state.locale = next;
  document.documentElement.lang = next;
}

export function format(template: string, params: Params = {}): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

export function translate(target: Locale, key: MessageKey, params?: Params): string {
  return format(dictionaries[target][key], params);
}

/** The message for `key` in the current language. */
export function t(key: MessageKey, params?: Params): string {
  return translate(state.locale, key, params);
}

type PluralBase = {
  [K in MessageKey]: K extends `${infer Base}.one` ? Base : never;
}[MessageKey];

/**
 * A counted message, choosing the language's plural form (Russian has three). `params` fills in
 * anything besides `{count}`, e.g. the lower end of a range whose upper end is counted.
 */
export function tn(key: PluralBase, count: number, target: Locale = state.locale, params: Params = {}): string {
  const form = new Intl.PluralRules(target).select(count);
  const candidate = `${key}.${form}` as MessageKey;
  const chosen = candidate in dictionaries[target] ? candidate : (`${key}.other` as MessageKey);
  return translate(target, chosen, { ...params, count });
}
