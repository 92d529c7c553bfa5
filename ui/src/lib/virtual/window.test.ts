import { describe, expect, it } from "vitest";

import { columnCount, gridHeight, itemsIn, NOTHING, rowTop, rowWindow, type GridShape, type View } from "./window";

// 1,000 items, 4 to a row, rows 100 px high and 10 px apart: a row every 110 px.
const shape: GridShape = { count: 1000, columns: 4, rowHeight: 100, gap: 10 };

/** The rows a grid renders first for `view`, with `overscan` views beyond each edge. */
const fresh = (view: View, overscan: number, grid = shape) => rowWindow(grid, view, NOTHING, overscan);

describe("virtual grid window", () => {
  it("fits as many columns as CSS auto-fill would, and at least one", () => {
    expect(columnCount(1000, 230, 12)).toBe(4); // 4 × 230 + 3 × 12 = 956 fits, 5 columns need 1198
    expect(columnCount(956, 230, 12)).toBe(4);
    expect(columnCount(955, 230, 12)).toBe(3);
    expect(columnCount(100, 230, 12)).toBe(1);
    expect(columnCount(0, 230, 12)).toBe(1);
  });

  it("measures rows with gaps between them but not after the last", () => {
    expect(rowTop(shape, 3)).toBe(330);
    expect(gridHeight(shape)).toBe(250 * 110 - 10);
    expect(gridHeight({ ...shape, count: 5 })).toBe(210);
    expect(gridHeight({ ...shape, count: 0 })).toBe(0);
  });

  it("renders the rows in view and the overscan on both sides", () => {
    // The view shows 1,100–1,540 px: rows 10–13; one view of overscan adds 660–1,100 and 1,540–1,980.
    expect(fresh({ top: 1100, height: 440 }, 1)).toEqual({ first: 6, end: 18 });
    expect(itemsIn(shape, { first: 6, end: 18 })).toEqual({ first: 24, end: 72 });
  });

  it("slides the rows rather than cut them at the ends of the grid", () => {
    // At the top, the 4 rows of overscan that would be above go below: 12 rows, as in the middle.
    expect(fresh({ top: 0, height: 440 }, 1)).toEqual({ first: 0, end: 12 });
    // Showing the last 4 rows, the 4 rows of overscan that would be below go above.
    expect(fresh({ top: rowTop(shape, 246), height: 440 }, 1)).toEqual({ first: 238, end: 250 });
    expect(itemsIn(shape, { first: 238, end: 250 })).toEqual({ first: 952, end: 1000 });
  });

  it("renders a short grid whole", () => {
    const short = { ...shape, count: 10 };
    expect(fresh({ top: 0, height: 440 }, 1, short)).toEqual({ first: 0, end: 3 });
    expect(itemsIn(short, { first: 0, end: 3 })).toEqual({ first: 0, end: 10 });
  });

  it("keeps the rendered rows while they cover half the overscan, then renders them afresh", () => {
    const rendered = fresh({ top: 1100, height: 440 }, 2); // rows 2–21
    expect(rendered).toEqual({ first: 2, end: 22 });
    // A view further down still has a view's worth of rendered rows below it (up to 2,420 px).
    expect(rowWindow(shape, { top: 1540, height: 440 }, rendered, 2)).toBe(rendered);
    expect(rowWindow(shape, { top: 660, height: 440 }, rendered, 2)).toBe(rendered);
    // One more row down, and the rows are chosen around the view again.
    expect(rowWindow(shape, { top: 1650, height: 440 }, rendered, 2)).toEqual({ first: 7, end: 27 });
  });

  it("renders afresh when the grid lost the rows rendered", () => {
    const rendered = { first: 240, end: 250 };
    const shorter = { ...shape, count: 40 }; // 10 rows
    expect(rowWindow(shorter, { top: 0, height: 440 }, rendered, 1)).toEqual({ first: 0, end: 10 });
  });

  it("renders nothing before the view has been measured, and nothing for no items", () => {
    expect(fresh({ top: 0, height: 0 }, 2)).toEqual(NOTHING);
    expect(fresh({ top: 0, height: 800 }, 2, { ...shape, count: 0 })).toEqual(NOTHING);
  });

  it("renders 40 cards whole in a 1280 × 800 window by default", () => {
    // The avatar grid there is about 700 px high, with three columns of 224 px cards; photos, five of 282 px.
    const avatars: GridShape = { count: 40, columns: 3, rowHeight: 224, gap: 12 };
    expect(itemsIn(avatars, rowWindow(avatars, { top: 0, height: 700 }, NOTHING))).toEqual({ first: 0, end: 40 });
    const photos: GridShape = { count: 40, columns: 5, rowHeight: 282, gap: 12 };
    expect(itemsIn(photos, rowWindow(photos, { top: 0, height: 740 }, NOTHING))).toEqual({ first: 0, end: 40 });
  });
});
