// ssmlib (scripts/vendor_assets.sh): make @jupyter-widgets/html-manager's embed-amd.js, loaded next,
// find its fonts in this folder. Its bundles take their asset URL from their AMD module ids, which
// RequireJS resolves against the page ("<page dir>/@jupyter-widgets/..."); map them here instead.
(function () {
  var here = document.currentScript.src.replace(/[^/]*([?#].*)?$/, "");
  window.__jupyter_widgets_assets_path__ = here;
  window.requirejs.config({
    paths: {
      "@jupyter-widgets/html-manager/dist": here.replace(/\/$/, ""),
      "@jupyter-widgets/html-manager": here + "embed-amd"
    }
  });
})();
