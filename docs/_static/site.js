// A figure shrunk to the column (the wide multi-panel curves of chapter 13) opens at full size in a new tab when
// clicked; figures shown at their own size are left alone.
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll(".bd-article img")) {
    if (img.closest("a")) continue;
    img.addEventListener("click", () => { if (img.naturalWidth > img.clientWidth) window.open(img.src, "_blank"); });
    img.addEventListener("load", () => { if (img.naturalWidth > img.clientWidth) { img.style.cursor = "zoom-in"; img.title = "click: full size"; } });
    if (img.complete && img.naturalWidth > img.clientWidth) { img.style.cursor = "zoom-in"; img.title = "click: full size"; }
  }
});
