// A figure shrunk to the column (the wide multi-panel curves of chapter 13) opens at full size in a new tab when
// clicked; figures shown at their own size are left alone.
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll(".bd-article img")) {
    if (img.closest("a")) continue;
    const shrunk = () => img.naturalWidth > img.clientWidth;
    const mark = () => { if (shrunk()) { img.style.cursor = "zoom-in"; img.title = "click: full size"; } };
    img.addEventListener("click", () => { if (shrunk()) window.open(img.src, "_blank"); });
    if (img.complete) mark(); else img.addEventListener("load", mark);
  }
});
