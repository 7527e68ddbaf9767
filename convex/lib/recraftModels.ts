/**
 * The Recraft raster models the pipeline can use, and what each accepts, from
 * Recraft's API reference (docs/api-reference: the model pages, "Maximum prompt
 * length" and "List of supported image sizes" in the appendix) and the vendored
 * OpenAPI document (reference/recraft-openapi.json). Vector models (SVG) are
 * left out: a portrait is a raster image.
 */

/** Recraft V2 and V3 sizes. */
const V3_SIZES = [
  "1024x1024",
  "1365x1024",
  "1024x1365",
  "1536x1024",
  "1024x1536",
  "1820x1024",
  "1024x1820",
  "1024x2048",
  "2048x1024",
  "1434x1024",
  "1024x1434",
  "1024x1280",
  "1280x1024",
  "1024x1707",
  "1707x1024",
] as const;
/** Recraft V4 and V4.1 standard (1K) sizes. */
const V4_SIZES = [
  "1024x1024",
  "1536x768",
  "768x1536",
  "1280x832",
  "832x1280",
  "1216x896",
  "896x1216",
  "1152x896",
  "896x1152",
  "832x1344",
  "1280x896",
  "896x1280",
  "1344x768",
  "768x1344",
] as const;
/** Recraft V4 and V4.1 Pro (2K) sizes. */
const V4_PRO_SIZES = [
  "2048x2048",
  "3072x1536",
  "1536x3072",
  "2560x1664",
  "1664x2560",
  "2432x1792",
  "1792x2432",
  "2304x1792",
  "1792x2304",
  "1664x2688",
  "2560x1792",
  "1792x2560",
  "2688x1536",
  "1536x2688",
] as const;

/** Raster styles of V2/V3 (`vector_illustration` and `icon` paint SVGs). */
const V2_STYLES = ["realistic_image", "digital_illustration", "any"] as const;
const V3_STYLES = [...V2_STYLES, "logo_raster"] as const;

export interface RecraftModel {
  id: string;
  /** The prompt limit and how Recraft counts it: V2/V3 in bytes, V4 and later in characters. */
  promptLimit: { max: number; unit: "bytes" | "characters" };
  /** The `style` values it accepts and the one sent by default; null: the model takes no `style` (V4 styles are style_id only). */
  styles: { accepted: readonly string[]; default: string } | null;
  sizes: readonly string[];
  /** Recraft's list price per image in USD, where its docs state one. */
  priceUsd?: number;
}

const v3 = (id: string, styles: readonly string[], priceUsd?: number): RecraftModel => ({
  id,
  promptLimit: { max: 1000, unit: "bytes" },
  styles: { accepted: styles, default: "realistic_image" },
  sizes: V3_SIZES,
  priceUsd,
});
const v4 = (id: string, sizes: readonly string[], priceUsd: number): RecraftModel => ({
  id,
  promptLimit: { max: 10_000, unit: "characters" },
  styles: null,
  sizes,
  priceUsd,
});

export const RECRAFT_MODELS: readonly RecraftModel[] = [
  v4("recraftv4_1", V4_SIZES, 0.035),
  v4("recraftv4_1_pro", V4_PRO_SIZES, 0.21),
  v4("recraftv4_1_utility", V4_SIZES, 0.035),
  v4("recraftv4_1_utility_pro", V4_PRO_SIZES, 0.21),
  v4("recraftv4", V4_SIZES, 0.04),
  v4("recraftv4_pro", V4_PRO_SIZES, 0.25),
  v3("recraftv3", V3_STYLES, 0.04),
  // Recraft's pricing page (docs/api-reference/pricing): raster generation with Recraft V2 is $0.022 (22 API units) an image.
  v3("recraftv2", V2_STYLES, 0.022),
];

/** The default: photoreal 1K portraits at the lowest price of the current generation (docs/OPERATIONS.md, "Recraft models"). */
export const DEFAULT_RECRAFT_MODEL = "recraftv4_1";

/** A model by its `model` value; Recraft also accepts `<model>_raster` for every raster model. */
export function recraftModel(id: string): RecraftModel | undefined {
  const base = id.endsWith("_raster") ? id.slice(0, -"_raster".length) : id;
  const model = RECRAFT_MODELS.find((m) => m.id === base);
  return model && { ...model, id };
}

/** The prompt's length in the unit the model counts. */
export function promptLength(model: RecraftModel, prompt: string): number {
  return model.promptLimit.unit === "bytes" ? new TextEncoder().encode(prompt).length : [...prompt].length;
}

export type ResolvedRecraftRequest = { model: RecraftModel; style?: string; styleId?: string; size: string };

/** `style_id` is a UUID in Recraft's OpenAPI document (GenerateImageRequestBase). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks RECRAFT_MODEL / RECRAFT_STYLE / RECRAFT_STYLE_ID / RECRAFT_SIZE
 * against the table: what is wrong (naming the variable), or the parameters
 * to send. A custom style (RECRAFT_STYLE_ID) is sent as `style_id` with no
 * `style`: every model here takes `style_id` (the OpenAPI document's
 * generation request has it for all of them), so it is refused only when it
 * is not a UUID or RECRAFT_STYLE is set too.
 */
export function resolveRecraftRequest(settings: {
  model: string;
  style?: string;
  styleId?: string;
  size: string;
}): { ok: true; value: ResolvedRecraftRequest } | { ok: false; message: string } {
  const model = recraftModel(settings.model);
  if (!model) {
    const known = RECRAFT_MODELS.map((m) => m.id).join(", ");
    return { ok: false, message: `RECRAFT_MODEL=${settings.model} is not a Recraft raster model this backend knows (${known})` };
  }
  if (!model.sizes.includes(settings.size)) {
    return { ok: false, message: `RECRAFT_SIZE=${settings.size} is not a size ${model.id} accepts (${model.sizes.join(", ")})` };
  }
  if (settings.styleId !== undefined) {
    if (settings.style !== undefined) {
      return {
        ok: false,
        message: `RECRAFT_STYLE=${settings.style} and RECRAFT_STYLE_ID are both set; a custom style replaces the style: unset one`,
      };
    }
    if (!UUID.test(settings.styleId))
      return { ok: false, message: `RECRAFT_STYLE_ID=${settings.styleId} is not a UUID (Recraft's style ids are)` };
    return { ok: true, value: { model, styleId: settings.styleId, size: settings.size } };
  }
  if (!model.styles) {
    if (settings.style !== undefined) {
      return {
        ok: false,
        message: `RECRAFT_STYLE=${settings.style} is set, but ${model.id} takes no style parameter; unset RECRAFT_STYLE`,
      };
    }
    return { ok: true, value: { model, size: settings.size } };
  }
  const style = settings.style ?? model.styles.default;
  if (!model.styles.accepted.includes(style)) {
    return { ok: false, message: `RECRAFT_STYLE=${style} is not a raster style ${model.id} accepts (${model.styles.accepted.join(", ")})` };
  }
  return { ok: true, value: { model, style, size: settings.size } };
}
