//! Signing in, signing up, signing out and choosing a language, as pages.

use askama::Template;
use axum::{
    Form,
    extract::{
        Query, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{Chrome, bad_form, error_page, i18n::Lang, page, safe_next};
use crate::{
    ApiError, AppState,
    extract::UserAgent,
    limits::ClientIp,
    routes::auth::{self, LoginRequest, RegisterRequest},
};

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    c: &'a Chrome,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    c: &'a Chrome,
    next: String,
    email: String,
    name: String,
    errors: Vec<String>,
}

/// `GET /login`.
pub async fn login_page(c: Chrome, query: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = safe_next(query.ok().and_then(|q| q.0.next).as_deref());
    page(
        StatusCode::OK,
        &LoginPage {
            c: &c,
            next,
            email: String::new(),
            error: None,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: opens a session (the same checks and limits as the API's login) and goes back
/// where the member was.
pub async fn login(
    State(app): State<AppState>,
    c: Chrome,
    UserAgent(user_agent): UserAgent,
    ClientIp(ip): ClientIp,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_form(&c);
    };
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_owned();
    let asked = LoginRequest {
        email: email.clone(),
        password: form.password,
    };
    match auth::sign_in(&app, asked, user_agent, ip).await {
        Ok((cookie, _)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(err) => {
            let error = match err.code() {
                "invalid_credentials" | "validation_failed" => c.t.wrong_credentials.to_owned(),
                _ => err.describe().1,
            };
            let status = err.status();
            page(
                status,
                &LoginPage {
                    c: &c,
                    next,
                    email,
                    error: Some(error),
                },
            )
        }
    }
}

/// `GET /register`.
pub async fn register_page(c: Chrome, query: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = safe_next(query.ok().and_then(|q| q.0.next).as_deref());
    page(
        StatusCode::OK,
        &RegisterPage {
            c: &c,
            next,
            email: String::new(),
            name: String::new(),
            errors: Vec::new(),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    email: String,
    password: String,
    name: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /register`: creates a member account and signs it in.
pub async fn register(
    State(app): State<AppState>,
    c: Chrome,
    UserAgent(user_agent): UserAgent,
    ClientIp(ip): ClientIp,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_form(&c);
    };
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_owned();
    let name = form.name.trim().to_owned();
    let failed = |err: ApiError| {
        let (_, detail, extra) = err.describe();
        let mut errors: Vec<String> = extra
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|e| {
                        Some(format!(
                            "{}: {}",
                            e.get("field")?.as_str()?,
                            e.get("message")?.as_str()?
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if errors.is_empty() {
            errors.push(detail);
        }
        page(
            err.status(),
            &RegisterPage {
                c: &c,
                next: next.clone(),
                email: email.clone(),
                name: name.clone(),
                errors,
            },
        )
    };
    let request = RegisterRequest {
        email: email.clone(),
        password: form.password.clone(),
        name: name.clone(),
    };
    if let Err(err) = auth::create_member(&app, request).await {
        return failed(err);
    }
    let login = LoginRequest {
        email: email.clone(),
        password: form.password,
    };
    match auth::sign_in(&app, login, user_agent, ip).await {
        Ok((cookie, _)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(err) => failed(err),
    }
}

/// `POST /logout`: ends this session and goes home.
pub async fn logout(State(app): State<AppState>, c: Chrome) -> Response {
    if let Some(viewer) = &c.viewer
        && let Some(session) = &viewer.user.session
        && let Err(err) = app.state.sessions.revoke_token(&session.token_hash).await
    {
        return error_page(&c, &err.into());
    }
    let [(name, value)] = auth::clear_cookie(&app);
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(name, value);
    response
}

/// `GET /lang/{code}?next=…`: remembers the chosen language for a year and goes back.
pub async fn switch_language(
    axum::extract::Path(code): axum::extract::Path<String>,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = safe_next(query.ok().and_then(|q| q.0.next).as_deref());
    let lang = Lang::parse(&code).unwrap_or(Lang::En);
    let mut response = Redirect::to(&next).into_response();
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        super::i18n::LANG_COOKIE,
        lang.code()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
