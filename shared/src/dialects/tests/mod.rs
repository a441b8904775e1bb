mod errors;
mod messages_request;
mod responses_request;
mod stream_meter;
mod usage;
