package e2e

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
	"time"
)

// The soak plot: one panel per series over the time of the run, drawn with
// the standard library only (image/png and a 5x7 bitmap font below), so
// the test needs no plotting dependency.

var (
	plotBG      = color.RGBA{255, 255, 255, 255}
	plotAxis    = color.RGBA{60, 60, 60, 255}
	plotGrid    = color.RGBA{225, 225, 225, 255}
	plotCurve   = color.RGBA{20, 70, 170, 255}
	plotFail    = color.RGBA{210, 30, 30, 255}
	plotHole    = color.RGBA{255, 222, 222, 255}
	plotLimit   = color.RGBA{230, 120, 0, 255}
	plotOK      = color.RGBA{20, 140, 40, 255}
	plotTextCol = color.RGBA{20, 20, 20, 255}
)

const (
	plotW      = 1400
	plotPanelH = 190 // plot area of one panel
	plotGapH   = 50  // panel title above, tick labels below
	plotLeft   = 100
	plotRight  = 30
	plotTop    = 44
	plotScale  = 2 // font pixels per bitmap pixel
)

// writeSoakPNG draws title (two lines at most, split by "\n") above each series in a panel of its own (the last one, the
// request rate, with fails as a second curve in red), shading the black
// holes and the warm-up, and for judged series the dashed limit over the
// last third.
func writeSoakPNG(path, title string, series []soakSeries, fails []point, holes [][2]time.Duration, warm, end time.Duration) error {
	h := plotTop + len(series)*(plotPanelH+plotGapH) + 10
	img := image.NewRGBA(image.Rect(0, 0, plotW, h))
	fill(img, img.Bounds(), plotBG)
	for i, l := range strings.Split(title, "\n") {
		drawText(img, 10, 8+i*9*plotScale, l, plotTextCol)
	}

	x0, x1 := plotLeft, plotW-plotRight
	xOf := func(d time.Duration) int {
		if end <= 0 {
			return x0
		}
		return x0 + int(float64(x1-x0)*d.Seconds()/end.Seconds())
	}
	for i, sr := range series {
		top := plotTop + i*(plotPanelH+plotGapH) + 22
		y0, y1 := top, top+plotPanelH
		pts := sr.points
		all := pts
		if sr.name == "requests" {
			all = append(append([]point(nil), pts...), fails...)
		}
		lo, hi := 0.0, 1.0
		for _, p := range all {
			hi = max(hi, p.v)
		}
		if sr.verdict.limit > 0 {
			hi = max(hi, sr.verdict.limit)
		}
		step := niceStep(hi-lo, 4)
		hi = math.Ceil(hi/step) * step
		yOf := func(v float64) int { return y1 - int(float64(y1-y0)*(v-lo)/(hi-lo)) }

		// Background: black holes, the warm-up darkened over them, grid.
		for _, hs := range holes {
			fill(img, image.Rect(xOf(hs[0]), y0, max(xOf(hs[1]), xOf(hs[0])+1), y1), plotHole)
		}
		darken(img, image.Rect(x0, y0, xOf(warm), y1))
		for v := lo; v <= hi+step/2; v += step {
			y := yOf(v)
			hline(img, x0, x1, y, plotGrid, 1)
			label := formatTick(v, step)
			drawText(img, x0-8-textWidth(label), min(y-7, y1-16), label, plotTextCol)
		}
		xstep := niceDuration(end, 10)
		for d := time.Duration(0); d <= end; d += xstep {
			x := xOf(d)
			vline(img, x, y0, y1, plotGrid)
			label := fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
			drawText(img, x-textWidth(label)/2, y1+8, label, plotTextCol)
		}
		third := (end - warm) / 3
		for _, d := range []time.Duration{warm + third, end - third} {
			for y := y0; y < y1; y += 6 {
				vline(img, xOf(d), y, min(y+3, y1), plotAxis)
			}
		}

		// Curves.
		polyline(img, pts, xOf, yOf, plotCurve)
		if sr.name == "requests" {
			polyline(img, fails, xOf, yOf, plotFail)
		}
		heading := sr.title
		col := plotTextCol
		if v := sr.verdict; v.nFirst > 0 {
			for x := xOf(end - third); x < x1; x += 10 {
				hline(img, x, min(x+6, x1), yOf(v.limit), plotLimit, 2)
			}
			state, c := "FLAT", plotOK
			if !v.ok {
				state, c = "LEAK", plotFail
			}
			heading = fmt.Sprintf("%s  FIRST THIRD MAX %s  LAST THIRD MEDIAN %s  LIMIT %s  SLOPE %+.2f/MIN  %s",
				sr.title, trimFloat(v.firstMax), trimFloat(v.lastMedian), trimFloat(v.limit), v.slopePerMin, state)
			col = c
		}
		drawText(img, x0, y0-20, heading, col)
		// Axes.
		hline(img, x0, x1, y1, plotAxis, 1)
		vline(img, x0, y0, y1, plotAxis)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// niceStep is a 1, 2 or 5 times a power of ten step that cuts span into
// about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func niceDuration(span time.Duration, n int) time.Duration {
	for _, s := range []time.Duration{10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute,
		2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour} {
		if span/s <= time.Duration(n) {
			return s
		}
	}
	return 2 * time.Hour
}

func formatTick(v, step float64) string {
	if step >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.*f", int(math.Ceil(-math.Log10(step))), v)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// darken tints r grey, keeping what is drawn there visible.
func darken(img *image.RGBA, r image.Rectangle) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.RGBAAt(x, y)
			img.SetRGBA(x, y, color.RGBA{c.R / 8 * 7, c.G / 8 * 7, c.B / 8 * 7, c.A})
		}
	}
}

func hline(img *image.RGBA, xa, xb, y int, c color.RGBA, width int) {
	fill(img, image.Rect(xa, y, xb+1, y+width), c)
}

func vline(img *image.RGBA, x, ya, yb int, c color.RGBA) {
	fill(img, image.Rect(x, ya, x+1, yb+1), c)
}

// polyline joins consecutive points with 2-pixel lines (Bresenham).
func polyline(img *image.RGBA, pts []point, xOf func(time.Duration) int, yOf func(float64) int, c color.RGBA) {
	for i := 1; i < len(pts); i++ {
		line(img, xOf(pts[i-1].at), yOf(pts[i-1].v), xOf(pts[i].at), yOf(pts[i].v), c)
	}
	if len(pts) == 1 {
		fill(img, image.Rect(xOf(pts[0].at)-1, yOf(pts[0].v)-1, xOf(pts[0].at)+2, yOf(pts[0].v)+2), c)
	}
}

func line(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := 1, 1
	if xa > xb {
		sx = -1
	}
	if ya > yb {
		sy = -1
	}
	e := dx + dy
	for {
		fill(img, image.Rect(xa, ya, xa+2, ya+2), c)
		if xa == xb && ya == yb {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			xa += sx
		} else {
			e += dx
			ya += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func textWidth(s string) int { return len(s) * 6 * plotScale }

// drawText writes s (upper-cased; characters without a glyph as blanks)
// with its top left corner at x, y.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g := font5x7[r]
		for row, bits := range g {
			for col := range 5 {
				if bits&(0x10>>col) != 0 {
					fill(img, image.Rect(x+col*plotScale, y+row*plotScale, x+(col+1)*plotScale, y+(row+1)*plotScale), c)
				}
			}
		}
		x += 6 * plotScale
	}
}

// font5x7 holds 5x7 glyphs, a row per byte, the leftmost pixel in bit 4.
var font5x7 = map[rune][7]byte{
	'0': {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},
	'1': {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
	'2': {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},
	'3': {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
	'4': {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},
	'5': {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
	'6': {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},
	'7': {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
	'8': {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},
	'9': {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
	'A': {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11},
	'B': {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
	'C': {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},
	'D': {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
	'E': {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},
	'F': {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
	'G': {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},
	'H': {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
	'I': {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},
	'J': {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
	'K': {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},
	'L': {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
	'M': {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},
	'N': {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
	'O': {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
	'P': {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
	'Q': {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},
	'R': {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
	'S': {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},
	'T': {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
	'U': {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
	'V': {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
	'W': {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},
	'X': {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
	'Y': {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},
	'Z': {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},
	'.': {0, 0, 0, 0, 0, 0x0C, 0x0C},
	',': {0, 0, 0, 0, 0x0C, 0x04, 0x08},
	'-': {0, 0, 0, 0x1F, 0, 0, 0},
	'+': {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0},
	':': {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0},
	';': {0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08},
	'/': {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0},
	'(': {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
	')': {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},
	'%': {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},
	'=': {0, 0, 0x1F, 0, 0x1F, 0, 0},
	'_': {0, 0, 0, 0, 0, 0, 0x1F},
}
