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
// ipywidgets' controls typeset the label of a widget with MathJax 2's API whenever window.MathJax
// exists: MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]). The book loads MathJax 3, which has
// no Hub, so every page with a labelled widget threw "Cannot read properties of undefined (reading
// 'Queue')". Give whatever object window.MathJax holds (MathJax 3 replaces it while it starts) a Hub
// whose Queue asks MathJax 3 to typeset that element.
(function () {
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i], mj = window.MathJax;
        if (Array.isArray(job) && job[0] === "Typeset" && job[2] && mj && mj.typesetPromise) {
          mj.typesetPromise([job[2]]).catch(function () {});
        }
      }
    }
  };
  function withHub(mj) {
    if (mj && typeof mj === "object" && !("Hub" in mj)) {
      Object.defineProperty(mj, "Hub", {value: hub, enumerable: false, configurable: true, writable: true});
    }
    return mj;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); }
  });
})();
// The book theme draws FontAwesome icons with JavaScript that, by default, replaces every
// <i class="fa ..."> with an <svg>. ipywidgets' Play button later looks up its <i> to switch the
// play/pause icon, found none ("Cannot set properties of undefined (setting 'className')") and
// never started playing. "nest" puts each <svg> inside its <i> instead, which the widgets keep finding.
window.FontAwesomeConfig = Object.assign({}, window.FontAwesomeConfig, {autoReplaceSvg: "nest"});
// A nested icon does not follow when a widget changes the class of its <i> (Play <-> Pause): redraw it.
document.addEventListener("DOMContentLoaded", function () {
  new MutationObserver(function (records) {
    records.forEach(function (r) {
      var el = r.target;
      if (el.tagName === "I" && el.hasAttribute("data-fa-i2svg") && /\bfa-/.test(el.className) &&
          window.FontAwesome) {
        el.removeAttribute("data-fa-i2svg");  // FontAwesome skips the <i> it has already drawn
        window.FontAwesome.dom.i2svg({node: el.parentNode});
      }
    });
  }).observe(document.body, {attributes: true, attributeFilter: ["class"], subtree: true});
});
