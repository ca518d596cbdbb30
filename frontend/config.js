// Where the page finds the Pacer API when the URL carries no ?api= parameter.
// Set it when the page is hosted apart from the API, for example after a deploy:
//   window.PACER_API = "https://abc123.execute-api.eu-west-1.amazonaws.com/api";
// Left unset, the page uses port 8000 on the host it was loaded from.
window.PACER_API = window.PACER_API || "";
