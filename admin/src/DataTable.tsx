import type { ReactNode } from "react";

/** A cell's or a row's own attributes, e.g. `data-code` for the tests and the stacked layout's CSS. */
type DataAttributes = { [name: `data-${string}`]: string | number | undefined };

/** One column: its header, and its cell in each row. */
export type Column<Row> = {
  /** The header's text, and each cell's `data-label` (the heading a cell shows in the stacked layout). */
  label: string;
  cell: (row: Row, index: number) => ReactNode;
  /** Figures: header and cells right-aligned in tabular digits. */
  num?: boolean;
  /** The cells' other classes. */
  className?: string;
  /** The row's header cell (`<th scope="row">`). */
  rowHeader?: boolean;
  cellAttributes?: (row: Row) => DataAttributes;
};

/**
 * The console's tables: a header row of columns, then one row per item. With
 * the `stack` class, narrow screens show each row as a card whose cells carry
 * their column's label (styles.css).
 */
export function DataTable<Row>({
  className,
  caption,
  columns,
  rows,
  rowKey,
  rowAttributes,
}: {
  className?: string;
  caption?: ReactNode;
  columns: Column<Row>[];
  rows: Row[];
  rowKey: (row: Row) => string | number;
  rowAttributes?: (row: Row) => DataAttributes & { className?: string };
}) {
  return (
    <table className={className}>
      {caption !== undefined && <caption className="muted">{caption}</caption>}
      <thead>
        <tr>
          {columns.map((column) => (
            <th key={column.label} scope="col" className={column.num ? "num" : undefined}>
              {column.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, index) => (
          <tr key={rowKey(row)} {...rowAttributes?.(row)}>
            {columns.map((column) => {
              const Cell = column.rowHeader ? "th" : "td";
              const className = [column.num && "num", column.className].filter(Boolean).join(" ") || undefined;
              return (
                <Cell
                  key={column.label}
                  scope={column.rowHeader ? "row" : undefined}
                  data-label={column.label}
                  className={className}
                  {...column.cellAttributes?.(row)}
                >
                  {column.cell(row, index)}
                </Cell>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
