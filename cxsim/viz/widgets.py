"""Two small Vue widgets drawn as SVG in the browser: the customer grid and a line chart.

They need nothing from a CDN and redraw in milliseconds (a matplotlib figure
costs ~0.2-0.4 s here, too slow for Play); the data they get is plain lists.
"""

import ipyvuetify
import traitlets


class CustomerGridWidget(ipyvuetify.VuetifyTemplate):
    """Customers as squares laid along the network's ring, snaking row by row; hover tells, click picks one.

    `cells`: JSON of one [colour, complaining (0/1), hover text, marked (0/1)] per customer (one string: a list
    trait of thousands of lists costs ~0.1 s per redraw to validate and compare); a marked customer (whose fate
    differs on the other side of a pair) gets a blue frame.
    """

    template = traitlets.Unicode("""
<template>
  <svg class="cx-customers" :viewBox="'0 0 ' + columns + ' ' + rows" width="100%"
       style="max-height: 100%" preserveAspectRatio="xMidYMin meet">
    <g v-for="(c, i) in cells" :key="i" @click="pick(i)" style="cursor: pointer">
      <rect :x="col(i) + 0.06" :y="row(i) + 0.06" width="0.88" height="0.88" :fill="c[0]"
            :class="c[3] ? 'cx-differs' : null"
            :stroke="i === selected ? '#000' : c[3] ? '#1565c0' : 'none'"
            :stroke-width="i === selected ? 0.25 : 0.16"><title>{{ c[2] }}</title></rect>
      <circle v-if="c[1]" :cx="col(i) + 0.5" :cy="row(i) + 0.5" r="0.2" fill="#1a1a1a" pointer-events="none"/>
    </g>
  </svg>
</template>
<script>
module.exports = {
  computed: {
    cells() { return JSON.parse(this.cells_json); },
    rows() { return Math.max(1, Math.ceil(this.cells.length / this.columns)); },
  },
  methods: {
    row(i) { return Math.floor(i / this.columns); },
    col(i) { const c = i % this.columns; return this.row(i) % 2 ? this.columns - 1 - c : c; },
  },
};
</script>
""").tag(sync=True)
    cells_json = traitlets.Unicode("[]").tag(sync=True)
    columns = traitlets.Int(1).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    on_pick = traitlets.Callable(None, allow_none=True)

    def vue_pick(self, index):
        if self.on_pick is not None:
            self.on_pick(int(index))


class LineChartWidget(ipyvuetify.VuetifyTemplate):
    """Lines over days, with optional markers.

    `series_json`: JSON of [{"name", "color", "values": [number or None per day]}];
    `markers_json`: JSON of [{"x": day, "y": value, "color", "label"}] drawn as dots with a hover label
    (JSON strings, like the grid's cells: list traits of a year of numbers cost a redraw its time in validation);
    `band`: [i, j] shades the area between series i and j (a pair's difference);
    `ylim`: [low, high] fixes the value axis (two charts to be read against each other), [] fits the data.
    """

    template = traitlets.Unicode("""
<template>
  <div class="cx-chart">
    <div style="font-size: 0.95em; font-weight: 500">{{ title }}
      <span v-for="s in series" :key="s.name" style="font-size: 0.8em; font-weight: 400; margin-left: 10px">
        <span :style="'color: ' + s.color">&#9632;</span> {{ s.name }}</span>
    </div>
    <svg :viewBox="'0 0 ' + W + ' ' + H" width="100%" preserveAspectRatio="xMidYMid meet">
      <g v-for="t in yticks" :key="'y' + t">
        <line :x1="L" :x2="W - R" :y1="sy(t)" :y2="sy(t)" stroke="#e4e4e4"/>
        <text :x="L - 4" :y="sy(t) + 3" text-anchor="end" font-size="10" fill="#555">{{ fmt(t) }}</text>
      </g>
      <text v-for="t in xticks" :key="'x' + t" :x="sx(t)" :y="H - 10" text-anchor="middle" font-size="10"
            fill="#555">{{ t }}</text>
      <text :x="W - R" :y="H - 1" text-anchor="end" font-size="10" fill="#777">day</text>
      <text :x="10" :y="T + (H - T - B) / 2" font-size="10" fill="#777" text-anchor="middle"
            :transform="'rotate(-90 10 ' + (T + (H - T - B) / 2) + ')'">{{ ylabel }}</text>
      <line :x1="L" :x2="L" :y1="T" :y2="H - B" stroke="#999"/>
      <polygon v-if="band.length === 2" class="cx-band" :points="bandPoints" fill="#9e9e9e" fill-opacity="0.35"
               stroke="none"/>
      <polyline v-for="s in series" :key="s.name" class="cx-line" :points="points(s.values)" fill="none"
                :stroke="s.color" stroke-width="1.8" stroke-linejoin="round"/>
      <circle v-for="(m, i) in markers" :key="'m' + i" :cx="sx(m.x)" :cy="sy(m.y)" r="3.5" :fill="m.color"
              stroke="#fff" stroke-width="0.8"><title>{{ m.label }}</title></circle>
    </svg>
  </div>
</template>
<script>
module.exports = {
  data() { return { W: 480, H: 200, L: 46, R: 10, T: 8, B: 26 }; },
  computed: {
    series() { return JSON.parse(this.series_json); },
    markers() { return JSON.parse(this.markers_json); },
    days() { return Math.max(2, ...this.series.map(s => s.values.length)); },
    range() {
      const ys = this.ylim.length === 2 ? this.ylim : this.series.flatMap(s => s.values)
        .concat(this.markers.map(m => m.y)).filter(y => y !== null && isFinite(y));
      let lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1;
      if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
      const step = this.nice((hi - lo) / 4);
      return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step];
    },
    yticks() { const [lo, hi, step] = this.range, out = [];
      for (let y = lo; y <= hi + step / 2; y += step) out.push(Math.abs(y) < step / 1e6 ? 0 : +y.toPrecision(12));
      return out; },
    bandPoints() {
      const [a, b] = this.band.map(k => this.series[k].values), days = [];
      a.forEach((y, x) => { if (y !== null && b[x] !== null && b[x] !== undefined) days.push(x); });
      const edge = (v, xs) => xs.map(x => this.sx(x).toFixed(1) + ',' + this.sy(v[x]).toFixed(1));
      return edge(a, days).concat(edge(b, days.slice().reverse())).join(' ');
    },
    xticks() { const step = this.nice((this.days - 1) / 5), out = [];
      for (let x = 0; x <= this.days - 1; x += step) out.push(x); return out; },
  },
  methods: {
    nice(x) { const p = Math.pow(10, Math.floor(Math.log10(x))), f = x / p;
      return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p; },
    sx(x) { return this.L + (this.W - this.L - this.R) * x / (this.days - 1); },
    sy(y) { const [lo, hi] = this.range; return this.H - this.B - (this.H - this.T - this.B) * (y - lo) / (hi - lo); },
    points(values) {
      return values.map((y, x) => y === null ? null : this.sx(x).toFixed(1) + ',' + this.sy(y).toFixed(1))
        .filter(p => p !== null).join(' ');
    },
    fmt(y) { return Math.abs(y) >= 10000 ? (y / 1000).toFixed(0) + 'k' : +y.toPrecision(4); },
  },
};
</script>
""").tag(sync=True)
    title = traitlets.Unicode().tag(sync=True)
    ylabel = traitlets.Unicode().tag(sync=True)
    series_json = traitlets.Unicode("[]").tag(sync=True)
    markers_json = traitlets.Unicode("[]").tag(sync=True)
    band = traitlets.List().tag(sync=True)
    ylim = traitlets.List().tag(sync=True)
