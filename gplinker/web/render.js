/* gplinker render.js: draws one predicted line (the text with its spans highlighted, a
   legend of the colours, a table of the records) for the service's page and for
   `gplinker view` alike. Every string from the data goes in through textContent, never as
   markup. Offsets are Python string indices (code points): the text is cut with
   Array.from, not by UTF-16 units, so an emoji before a span does not shift it. */
"use strict";

const GPL = (() => {
  const TRIGGER = "触发词"; // the trigger's role name in gplinker's event schema
  const MAX_BANDS = 3; // underlines for the outer spans of a piece; more would bury the text

  /** A colour from a label's name alone (FNV-1a hash -> hue), so that a role or a type
      has the same colour on every line, in the page and in the view. */
  function colour(label) {
    let h = 2166136261;
    for (const ch of String(label)) {
      h = Math.imul(h ^ ch.codePointAt(0), 16777619) >>> 0;
    }
    return `hsl(${h % 360}, ${60 + (h >>> 12) % 4 * 8}%, ${76 + (h >>> 20) % 3 * 5}%)`;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  /* Per task: the key of the records, the table's columns, what colours a span, and per
     record its cells: a string, or a list of spans {label, role, start, end?, text}. */
  const TASKS = {
    event: {
      key: "event_list",
      columns: ["event type", "trigger", "arguments"],
      colours: "argument role (the trigger: " + TRIGGER + ")",
      cells: (ev) => [
        ev.event_type,
        ev.trigger == null ? [] : [span(TRIGGER, TRIGGER, ev.trigger_start_index, ev.trigger)],
        (ev.arguments || []).map((a) =>
          span(a.role, a.role, a.argument_start_index, a.argument, null, a.role)),
      ],
    },
    entity: {
      key: "entities",
      columns: ["label", "entity", "start", "end"],
      colours: "entity label",
      cells: (e) => [
        e.label,
        [span(e.label, e.label, e.start_offset, e.entity, e.end_offset)],
        String(e.start_offset),
        String(e.end_offset),
      ],
    },
    relation: {
      key: "spo_list",
      columns: ["subject", "predicate", "object"],
      colours: "entity type (subject_type, object_type)",
      cells: (t) => [
        [span(t.subject_type, "subject", t.subject_start_index, t.subject, null, t.subject_type)],
        t.predicate,
        [span(t.object_type, "object", t.object_start_index, t.object, null, t.object_type)],
      ],
    },
  };

  /** label: what colours it; role: its part in the record; caption: shown before its text
      in the table where the column does not say it. */
  function span(label, role, start, text, end, caption) {
    const s = { label: String(label), role: String(role), text: String(text), start: null };
    if (caption != null) s.caption = String(caption);
    if (Number.isInteger(start)) {
      s.start = start;
      s.end = Number.isInteger(end) ? end : start + Array.from(s.text).length;
    }
    return s;
  }

  /** The element for one line: {task, row} where row is what `gplinker predict` writes
      (its "text" and the task's list of records). */
  function render(task, row) {
    const spec = TASKS[task];
    const box = el("section", "gpl-record");
    if (!spec) {
      box.append(el("p", "gpl-error", `unknown task ${JSON.stringify(task)}`));
      return box;
    }
    box.dataset.task = task;
    const table = (row[spec.key] || []).map(spec.cells);
    const spans = collect(table);
    box.append(drawText(String(row.text ?? ""), spans), drawLegend(spec, table));
    box.append(table.length ? drawTable(spec.columns, table) : el("p", "gpl-none", "no records"));
    return box;
  }

  /** One span per (label, start, end) of the table's cells, each cell span told its id:
      an argument shared by two events is highlighted once. */
  function collect(table) {
    const byKey = new Map();
    for (const cells of table) {
      for (const cell of cells) {
        if (!Array.isArray(cell)) continue;
        for (const s of cell) {
          if (s.start === null || s.end <= s.start) continue; // no offset: listed only
          const key = JSON.stringify([s.label, s.start, s.end]);
          if (!byKey.has(key)) byKey.set(key, { id: byKey.size, ...s });
          s.id = byKey.get(key).id;
        }
      }
    }
    return [...byKey.values()];
  }

  /** The text cut at every span boundary; each piece that spans cover is one element that
      names all of them (data-spans), coloured by the innermost, with a coloured band
      underneath per outer span: nested and crossing spans both stay visible. */
  function drawText(text, spans) {
    const chars = Array.from(text);
    const n = chars.length;
    const clamp = (i) => Math.max(0, Math.min(n, i));
    const cuts = [...new Set([0, n, ...spans.flatMap((s) => [clamp(s.start), clamp(s.end)])])]
      .sort((a, b) => a - b);
    const out = el("div", "gpl-text");
    for (let k = 0; k + 1 < cuts.length; k++) {
      const [a, b] = [cuts[k], cuts[k + 1]];
      const piece = chars.slice(a, b).join("");
      const on = spans.filter((s) => s.start <= a && b <= s.end)
        .sort((x, y) => (x.end - x.start) - (y.end - y.start) || y.start - x.start);
      if (!on.length) {
        out.append(document.createTextNode(piece));
        continue;
      }
      const seg = el("span", "gpl-seg", piece);
      seg.dataset.start = a;
      seg.dataset.end = b;
      seg.dataset.spans = on.map((s) => s.id).join(" ");
      seg.dataset.labels = JSON.stringify(on.map((s) => s.label));
      seg.style.backgroundColor = colour(on[0].label);
      if (on.length > 1) { // a band per outer span, the first few (all are in the title)
        const bands = on.slice(1, 1 + MAX_BANDS);
        seg.classList.add("gpl-overlap");
        seg.style.boxShadow = bands
          .map((s, i) => `inset 0 -${3 * (i + 1)}px 0 0 ${colour(s.label)}`).join(", ");
        seg.style.paddingBottom = `${3 * (bands.length + 1)}px`;
      }
      seg.title = on.map((s) => `${s.role}: ${s.text} [${s.start}, ${s.end})`).join("\n");
      out.append(seg);
    }
    return out;
  }

  function drawLegend(spec, table) {
    const labels = [];
    for (const cells of table) {
      for (const cell of cells) {
        if (Array.isArray(cell)) labels.push(...cell.map((s) => s.label));
      }
    }
    const legend = el("div", "gpl-legend");
    legend.append(el("span", "gpl-legend-title", `colours: ${spec.colours}`));
    const list = el("ul");
    for (const label of new Set(labels)) {
      const item = el("li", "gpl-key");
      item.dataset.label = label;
      const swatch = el("span", "gpl-swatch");
      swatch.style.backgroundColor = colour(label);
      item.append(swatch, document.createTextNode(label));
      list.append(item);
    }
    legend.append(list);
    return legend;
  }

  function drawTable(columns, table) {
    const t = el("table", "gpl-table");
    const head = el("tr");
    head.append(...columns.map((c) => el("th", null, c)));
    t.append(el("thead"), el("tbody"));
    t.tHead.append(head);
    for (const cells of table) {
      const tr = el("tr");
      for (const cell of cells) {
        const td = el("td");
        if (Array.isArray(cell)) td.append(...cell.map(chip));
        else td.textContent = cell ?? "";
        tr.append(td);
      }
      t.tBodies[0].append(tr);
    }
    return t;
  }

  /** A span in the table: its caption, if any, and its text. */
  function chip(s) {
    const c = el("span", "gpl-span");
    Object.assign(c.dataset, { label: s.label, role: s.role });
    if (s.start !== null) {
      c.dataset.start = s.start;
      c.dataset.end = s.end;
      if (s.id !== undefined) c.dataset.span = s.id;
    } else {
      c.classList.add("gpl-no-offset");
      c.title = "no offset in the record: not highlighted";
    }
    c.style.backgroundColor = colour(s.label);
    if (s.caption !== undefined) c.append(el("span", "gpl-role", s.caption));
    c.append(el("span", "gpl-span-text", s.text));
    return c;
  }

  return { render, colour };
})();
