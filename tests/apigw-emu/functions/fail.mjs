// fail: always throws, so Invoke answers 200 with X-Amz-Function-Error:
// Unhandled and {"errorType": "Error", "errorMessage": "...", "trace": [...]}.
// An event {"type": "TypeError", "message": "..."} chooses the error.
export async function handler(event) {
	console.error('fail: about to throw');
	const Ctor = event && event.type === 'TypeError' ? TypeError : Error;
	throw new Ctor((event && event.message) || 'this function always fails');
}
