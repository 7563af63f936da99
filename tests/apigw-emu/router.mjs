// router.mjs: stage and route selection, as API Gateway does it.
//
// Paths are matched segment by segment on the raw (still percent-encoded)
// request path; empty segments are ignored (so "/prod/orders/" is
// "/prod/orders").  Per segment a literal beats a {param}, which beats a
// greedy {name+} (which takes one or more segments and must be last); the
// most specific route wins, compared from the left.  A method matches
// itself or ANY, and an exact method beats ANY among equally specific
// routes.

function safeDecode(s) {
	try {
		return decodeURIComponent(s);
	} catch {
		return s;
	}
}

// parts: ["orders", "{id}"]; segs: raw request segments.  Returns
// { score: [..], params: { id: raw value } } or null.
export function matchParts(parts, segs) {
	const score = [];
	const params = {};
	for (let i = 0; i < parts.length; i++) {
		const p = parts[i];
		const greedy = /^\{(.+)\+\}$/.exec(p);
		if (greedy) {
			if (i !== parts.length - 1 || segs.length <= i) {
				return null;
			}
			params[greedy[1]] = segs.slice(i).join('/');
			score.push(1);
			return { score, params };
		}
		if (i >= segs.length) {
			return null;
		}
		const param = /^\{(.+)\}$/.exec(p);
		if (param) {
			params[param[1]] = segs[i];
			score.push(2);
		} else if (p === segs[i] || p === safeDecode(segs[i])) {
			score.push(3);
		} else {
			return null;
		}
	}
	if (parts.length !== segs.length) {
		return null;
	}
	return { score, params };
}

function compareScores(a, b) {
	const n = Math.max(a.length, b.length);
	for (let i = 0; i < n; i++) {
		const x = a[i] ?? 0;
		const y = b[i] ?? 0;
		if (x !== y) {
			return y - x; // higher first
		}
	}
	return 0;
}

export function decodeParams(params) {
	const out = {};
	for (const [k, v] of Object.entries(params)) {
		out[k] = safeDecode(v);
	}
	return out;
}

// The stage of a request and the remaining segments, or null.
export function selectStage(def, segs) {
	if (def.kind === 'HTTP') {
		if (segs.length && segs[0] !== '$default' && def.stages.has(segs[0])) {
			return { stage: segs[0], segs: segs.slice(1) };
		}
		if (def.stages.has('$default')) {
			return { stage: '$default', segs };
		}
		return null;
	}
	if (segs.length && def.stages.has(segs[0])) {
		return { stage: segs[0], segs: segs.slice(1) };
	}
	return null;
}

// REST API: { resource, method, params } or null.
export function matchRest(def, method, segs) {
	const cands = [];
	for (const r of def.resources) {
		const m = matchParts(r.parts, segs);
		if (m) {
			cands.push({ r, ...m });
		}
	}
	cands.sort((a, b) => compareScores(a.score, b.score));
	for (const c of cands) {
		const def2 = c.r.methods[method] || c.r.methods.ANY;
		if (def2) {
			return { resource: c.r, method: def2, params: c.params };
		}
	}
	return null;
}

// HTTP API: { route, params } or null ($default when nothing else).
export function matchHttp(def, method, segs) {
	const cands = [];
	for (const r of def.routes) {
		if (!r.parts || (r.method !== method && r.method !== 'ANY')) {
			continue;
		}
		const m = matchParts(r.parts, segs);
		if (m) {
			cands.push({ route: r, ...m });
		}
	}
	cands.sort((a, b) => compareScores(a.score, b.score) ||
		(a.route.method === 'ANY') - (b.route.method === 'ANY'));
	if (cands.length) {
		return { route: cands[0].route, params: cands[0].params };
	}
	const dflt = def.routes.find((r) => r.key === '$default');
	return dflt ? { route: dflt, params: {} } : null;
}

// WebSocket: the route for a message, by the API's route selection
// expression ($request.body.<path>); $default when no route has the key.
export function selectWsRoute(def, text) {
	let key;
	const m = /^\$request\.body\.(.+)$/.exec(def.routeSelectionExpression || '');
	if (m && text !== null) {
		try {
			let v = JSON.parse(text);
			for (const k of m[1].split('.')) {
				v = v !== null && typeof v === 'object' ? v[k] : undefined;
			}
			if (typeof v === 'string' || typeof v === 'number') {
				key = String(v);
			}
		} catch {
			// not JSON: $default
		}
	}
	const named = key !== undefined && !key.startsWith('$')
		? def.routes.find((r) => r.key === key) : undefined;
	return named || def.routes.find((r) => r.key === '$default') || null;
}
