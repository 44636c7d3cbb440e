// Asks before a plain form with data-confirm is sent (htmx forms use hx-confirm).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) { event.preventDefault(); }
});

// 查看明文: a value shown in full goes back to its masked form after the seconds the server set.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-hide-after]").forEach(function (el) {
    var seconds = parseInt(el.getAttribute("data-hide-after"), 10) || 30;
    window.setTimeout(function () {
      el.textContent = el.getAttribute("data-masked") || "";
      el.classList.remove("revealed");
      var timer = el.parentNode && el.parentNode.querySelector(".reveal-timer");
      if (timer) { timer.remove(); }
    }, seconds * 1000);
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
});
