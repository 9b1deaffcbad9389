// @generated automatically by Diesel CLI.

diesel::table! {
    agents (company, user_id) {
        company -> Text,
        user_id -> Text,
        name -> Text,
        status -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    calendar_connections (company, user_id) {
        company -> Text,
        user_id -> Text,
        refresh_token -> Text,
        calendar_id -> Nullable<Text>,
        time_zone -> Nullable<Text>,
        connected_at -> BigInt,
    }
}

diesel::table! {
    calendar_oauth_states (state) {
        state -> Text,
        company -> Text,
        user_id -> Text,
        code_verifier -> Text,
        expires_at -> BigInt,
        browser_binding -> Text,
    }
}

diesel::table! {
    call_events (id) {
        id -> Integer,
        call_id -> Text,
        provider -> Text,
        status -> Text,
        sequence -> Nullable<BigInt>,
        applied -> Bool,
        payload -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    call_keys (company, provider, external_id) {
        company -> Text,
        provider -> Text,
        external_id -> Text,
        call_id -> Text,
    }
}

diesel::table! {
    calls (id) {
        id -> Text,
        company -> Text,
        provider -> Text,
        provider_call_id -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        parties -> Text,
        direction -> Nullable<Text>,
        from_number -> Nullable<Text>,
        to_number -> Nullable<Text>,
        status -> Text,
        status_rank -> Integer,
        ended_reason -> Nullable<Text>,
        last_sequence -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        ended_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    conversations (company, id) {
        company -> Text,
        id -> Text,
        kind -> Text,
        customer_id -> Nullable<Text>,
        member_a -> Nullable<Text>,
        member_b -> Nullable<Text>,
        customer_name -> Nullable<Text>,
        member_a_name -> Nullable<Text>,
        member_b_name -> Nullable<Text>,
        member_a_role -> Nullable<Text>,
        member_b_role -> Nullable<Text>,
        last_seq -> BigInt,
        last_message_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    messages (company, conversation, seq) {
        company -> Text,
        conversation -> Text,
        seq -> BigInt,
        id -> Text,
        sender_id -> Text,
        sender_name -> Text,
        sender_role -> Text,
        text -> Text,
        meta -> Nullable<Text>,
        client_id -> Nullable<Text>,
        sent_at -> BigInt,
    }
}

diesel::table! {
    read_positions (company, conversation, user_id) {
        company -> Text,
        conversation -> Text,
        user_id -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    server_settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        company -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(call_events -> calls (call_id));
diesel::joinable!(call_keys -> calls (call_id));

diesel::allow_tables_to_appear_in_same_query!(
    agents,
    calendar_connections,
    calendar_oauth_states,
    call_events,
    call_keys,
    calls,
    conversations,
    messages,
    read_positions,
    server_settings,
    users,
);
