/* gplinker view.js: draws the lines embedded in the file (script#data) with GPL.render;
   an error record of `predict --on-error record` is shown as its message. */
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("data").textContent);
  const main = document.getElementById("lines");
  data.rows.forEach((row, i) => {
    const item = document.createElement("article");
    item.className = "gpl-line";
    const head = document.createElement("h2");
    head.textContent = row.id === undefined ? `#${i + 1}` : `${row.id}`;
    item.append(head);
    if (row.error !== undefined) {
      const p = document.createElement("p");
      p.className = "gpl-error";
      p.textContent = `line ${row.line ?? "?"}: ${row.error}`;
      item.append(p);
    } else {
      item.append(GPL.render(data.task, row));
    }
    main.append(item);
  });
})();
