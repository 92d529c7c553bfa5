// The arithmetic of a virtualised grid: which rows of equal height to render for what is in view.

/**
 * Rows rendered beyond each edge of the view, in heights of the view, when they are chosen (as the
 * view moves, at least half as many stay). Generous, so that small lists are rendered whole and Tab
 * reaches well past the visible rows before the rendered ones have to change.
 */
export const OVERSCAN_SCREENS = 2;

/** Columns at least `minWidth` wide, `gap` apart, that fit in `width`, as CSS `auto-fill` counts them; never fewer than one. */
export function columnCount(width: number, minWidth: number, gap: number): number {
  return Math.max(1, Math.floor((width + gap) / (minWidth + gap)));
}

/** `count` items in `columns` columns of rows `rowHeight` high, `gap` apart (all in pixels). */
export interface GridShape {
  count: number;
  columns: number;
  rowHeight: number;
  gap: number;
}

/** Rows needed for all the items. */
export function rowCount({ count, columns }: GridShape): number {
  return Math.ceil(count / columns);
}

/** Where a row starts, from the grid's top edge. */
export function rowTop(shape: GridShape, row: number): number {
  return row * (shape.rowHeight + shape.gap);
}

/** The grid's full height: every row, with gaps between rows but not after the last. */
export function gridHeight(shape: GridShape): number {
  const rows = rowCount(shape);
  return rows === 0 ? 0 : rowTop(shape, rows) - shape.gap;
}

/** The part of the grid in view, in pixels from the grid's top edge; `top` is negative while the grid starts lower down. */
export interface View {
  top: number;
  height: number;
}

/** Rows or items from `first` up to but excluding `end`. */
export interface Range {
  first: number;
  end: number;
}

/** No rows: what a grid renders before it has been measured. */
export const NOTHING: Range = { first: 0, end: 0 };

/**
 * The rows covering the view and `overscan` views beyond each edge of it. Near an end of the grid
 * the range slides rather than shrinks, so the rows that would lie past the end are taken from the
 * other side instead; the first screen of a list thus shows as many items as any other.
 */
function coveringRows(shape: GridShape, view: View, overscan: number): Range {
  const pitch = rowTop(shape, 1);
  const margin = view.height * overscan;
  const wantedFirst = Math.floor((view.top - margin) / pitch);
  const wantedEnd = Math.ceil((view.top + view.height + margin) / pitch);
  const rows = rowCount(shape);
  const span = Math.min(rows, wantedEnd - wantedFirst);
  const first = Math.max(0, Math.min(wantedFirst, rows - span));
  return { first, end: first + span };
}

/**
 * The rows to render for the view, given the rows rendered now. Each change of the rendered rows
 * costs the frame it lands in a layout and a repaint (some 50 ms in WebKitGTK painting without a
 * GPU, as under Xvfb), so the rows change in jumps rather than one at a time: the current ones stay while they cover
 * half the overscan on both sides of the view, and are then chosen afresh with all of it.
 */
export function rowWindow(shape: GridShape, view: View, current: Range, overscan = OVERSCAN_SCREENS): Range {
  const needed = coveringRows(shape, view, overscan / 2);
  const covers = current.first <= needed.first && needed.end <= current.end && current.end <= rowCount(shape);
  return covers ? current : coveringRows(shape, view, overscan);
}

/** The items in `rows`. */
export function itemsIn(shape: GridShape, rows: Range): Range {
  return { first: rows.first * shape.columns, end: Math.min(shape.count, rows.end * shape.columns) };
}
