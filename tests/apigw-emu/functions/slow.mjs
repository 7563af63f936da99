// slow: waits event.ms milliseconds (default 5000) before answering, for
// timeout tests (the function's Timeout in moto bounds it; define-apis.mjs
// does not create this function: a test creates it in moto when needed).
export async function handler(event) {
	const ms = Number(event?.ms ?? 5000);
	await new Promise((r) => setTimeout(r, ms));
	return { slept: ms };
}
