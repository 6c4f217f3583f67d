/**
 * The console's only script of its own, for a console under `base` (its `basePath`, already
 * validated: nothing in it needs escaping in a quoted string; served as `<base>/assets/console.js`,
 * loaded after htmx):
 * - keeps relative times current: every `<time data-relative>` is re-rendered from its `datetime`
 *   every 15 s (the server renders them once), with the same wording as `relative()` in views.ts;
 *   `data-since` elements show a duration since their `datetime`;
 * - says when the live connection to the server is lost (a banner), and on every (re)connection
 *   re-fetches what the page shows, since events sent before it were missed;
 * - sends the browser to the sign-in page (`<base>/login`) when a live refresh is answered 401
 *   (signed out elsewhere, session expired);
 * - `[data-back]` buttons go back in history, so a reviewed answer's form keeps its values.
 */
export const consoleScript = (base: string): string => `
(function () {
  function words(ms) {
    var abs = Math.abs(ms), n, unit;
    if (abs < 45000) { n = Math.round(abs / 1000); unit = 's'; }
    else if (abs < 45 * 60000) { n = Math.round(abs / 60000); unit = 'min'; }
    else if (abs < 36 * 3600000) { n = Math.round(abs / 3600000); unit = 'h'; }
    else { n = Math.round(abs / 86400000); unit = n === 1 ? 'day' : 'days'; }
    return n + ' ' + unit;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll('time[data-relative]').forEach(function (el) {
      var at = Date.parse(el.getAttribute('datetime'));
      if (!isNaN(at)) el.textContent = at >= now ? 'in ' + words(at - now) : words(now - at) + ' ago';
    });
    document.querySelectorAll('time[data-since]').forEach(function (el) {
      var at = Date.parse(el.getAttribute('datetime'));
      if (!isNaN(at)) el.textContent = words(now - at);
    });
  }
  setInterval(tick, 15000);
  document.addEventListener('htmx:afterSwap', tick);

  var lost = false;
  function banner(show) {
    var el = document.getElementById('connection');
    if (el) el.hidden = !show;
  }
  document.body.addEventListener('htmx:sseError', function () { lost = true; banner(true); });
  // On every (re)connection, re-fetch what the page shows: changes made between rendering the page
  // and subscribing (a task finishing right after its answer), or while the connection was lost,
  // sent events nobody received.
  document.body.addEventListener('htmx:sseOpen', function () {
    banner(false);
    lost = false;
    document.querySelectorAll('[data-live]').forEach(function (el) {
      htmx.ajax('GET', el.getAttribute('hx-get'), { target: el, swap: 'innerHTML' });
    });
  });
  document.body.addEventListener('htmx:responseError', function (event) {
    if (event.detail && event.detail.xhr && event.detail.xhr.status === 401) window.location.href = '${base}/login';
  });
  document.addEventListener('click', function (event) {
    var target = event.target;
    if (target && target.closest && target.closest('[data-back]')) { event.preventDefault(); history.back(); }
  });
})();
`;
