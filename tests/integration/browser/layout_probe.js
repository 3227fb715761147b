window.addEventListener("load", function () {
  var facts = {width: window.innerWidth, pageScroll: document.documentElement.scrollWidth, columns: {}};
  var table = document.getElementById("leaderboard");
  var cost = document.getElementById("cost");
  if (cost) { facts.costScroll = cost.parentElement.scrollWidth - cost.parentElement.clientWidth; }
  var box = table.parentElement;
  function rects(tag) {
    table.querySelectorAll("thead tr:last-child th").forEach(function (th) {
      var r = th.getBoundingClientRect();
      facts.columns[th.dataset.column] = facts.columns[th.dataset.column] || {};
      facts.columns[th.dataset.column][tag] = [Math.round(r.left), Math.round(r.right)];
    });
  }
  rects("start");
  facts.tableScroll = box.scrollWidth - box.clientWidth;
  box.scrollLeft = box.scrollWidth;
  rects("scrolled");
  facts.finding = document.getElementById("finding").getBoundingClientRect().top;
  facts.minFont = Math.min.apply(null, Array.prototype.map.call(document.querySelectorAll("td, th, figcaption, p"), function (e) { return parseFloat(getComputedStyle(e).fontSize); }));
  facts.imageScale = Math.min.apply(null, Array.prototype.map.call(document.images, function (i) { return i.width / i.naturalWidth; }));
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  facts.overflow = Array.prototype.map.call(document.querySelectorAll("div.scroll"), function (d) { return d.scrollWidth - d.clientWidth; });
  var pre = document.createElement("pre"); pre.id = "layout-facts"; pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
});
